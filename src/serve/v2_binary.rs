//! The Open Inference Protocol's binary tensor data extension, as Triton and its clients
//! (`tritonclient`'s `set_data_from_numpy`, its default) speak it: a request body is a JSON
//! header of `Inference-Header-Content-Length` bytes followed by the raw little-endian bytes
//! of each input whose `parameters.binary_data_size` says how many; an answer is built the
//! same way for the outputs asked for in binary (`parameters.binary_data` per output, or
//! `binary_data_output` for all), BYTES elements each prefixed by their 4-byte little-endian
//! length.
//!
//! Every size a client states is checked against the others and against the bytes actually
//! received before anything is allocated from it, so no stated size can make the server
//! allocate more than the body it has already read within `--max-body-bytes`.

use axum::http::HeaderMap;

use super::error::ApiError;

/// The header naming the length of the JSON part of a body (request and answer).
pub const HEADER: &str = "inference-header-content-length";

/// The body split into its JSON header and the binary data after it. Without the header the
/// whole body is JSON and no binary data follows.
pub fn split<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok((body, &[]));
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(
            "`Inference-Header-Content-Length` is given more than once",
        ));
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    let len: usize = text.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`Inference-Header-Content-Length` `{text}` is not a byte count"
        ))
    })?;
    if len > body.len() {
        return Err(ApiError::bad_request(format!(
            "`Inference-Header-Content-Length` `{len}` is larger than the body's `{}` bytes",
            body.len()
        )));
    }
    Ok(body.split_at(len))
}

/// Bytes of one element of a numeric datatype this server reads.
pub fn width(datatype: &str) -> Option<usize> {
    match datatype {
        "FP32" => Some(4),
        "FP64" => Some(8),
        _ => None,
    }
}

/// The values of input `name` sent as `size` bytes of binary data, `binary` being everything
/// after the JSON header (the model takes one input, so all of it is this input's). The
/// size must be what `shape` × `datatype` takes and what arrived.
pub fn input_values(
    name: &str,
    shape: &[usize],
    datatype: &str,
    size: u64,
    binary: &[u8],
) -> Result<Vec<f64>, ApiError> {
    let Some(w) = width(datatype) else {
        return Err(ApiError::bad_request(format!(
            "input `{name}` has datatype `{datatype}`; FP32 or FP64 expected"
        )));
    };
    let expected = shape
        .iter()
        .try_fold(w as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "input `{name}`: shape `{shape:?}` of {datatype} is more bytes than can be counted"
            ))
        })?;
    if size != expected {
        return Err(ApiError::bad_request(format!(
            "input `{name}`: `binary_data_size` `{size}` does not match shape `{shape:?}` of {datatype} (`{expected}` bytes)"
        )));
    }
    if size != binary.len() as u64 {
        return Err(ApiError::bad_request(format!(
            "input `{name}`: `binary_data_size` `{size}` but `{}` bytes of binary data follow the JSON header",
            binary.len()
        )));
    }
    // `binary` is part of a body already read within the size limit: this allocation is
    // bounded by it (twice its bytes for FP32, as f64).
    Ok(match w {
        4 => binary
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        _ => binary
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
    })
}

/// A BYTES tensor as the extension carries it: each element's length as a 4-byte
/// little-endian integer, then its bytes.
pub fn bytes_tensor<'a>(elements: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    for e in elements {
        // Labels are class names from the model file, far below 4 GiB.
        out.extend_from_slice(&(e.len() as u32).to_le_bytes());
        out.extend_from_slice(e.as_bytes());
    }
}

/// FP64 values, little-endian.
pub fn fp64_tensor(values: impl IntoIterator<Item = f64>, out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_header_length_splits_the_body() {
        let body = b"{\"a\":1}\x01\x02";
        let (json, bin) = split(&headers(&["7"]), body).unwrap();
        assert_eq!(json, b"{\"a\":1}");
        assert_eq!(bin, b"\x01\x02");
        assert_eq!(split(&headers(&[]), body).unwrap().1, b"");
        assert_eq!(split(&headers(&["9"]), body).unwrap().1, b"");
    }

    #[test]
    fn a_header_length_that_cannot_be_the_bodys_is_a_bad_request() {
        let body = b"{\"a\":1}";
        for (value, says) in [
            (
                "8",
                "`Inference-Header-Content-Length` `8` is larger than the body's `7` bytes",
            ),
            ("-1", "`-1` is not a byte count"),
            (
                "18446744073709551616",
                "`18446744073709551616` is not a byte count",
            ),
            ("1e3", "`1e3` is not a byte count"),
            ("", "`` is not a byte count"),
        ] {
            let e = split(&headers(&[value]), body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{value}");
            assert!(e.message.contains(says), "{value}: {}", e.message);
        }
        let e = split(&headers(&["3", "3"]), body).unwrap_err();
        assert!(e.message.contains("more than once"), "{}", e.message);
    }

    #[test]
    fn binary_inputs_are_read_only_when_every_size_agrees() {
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let v = input_values("eeg", &[1, 1, 2], "FP32", 8, &bytes).unwrap();
        assert_eq!(v, vec![1.5, -2.0]);
        let wide: Vec<u8> = [0.1f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            input_values("eeg", &[1, 1, 1], "FP64", 8, &wide).unwrap(),
            vec![0.1]
        );
        for (shape, dt, size, says) in [
            (
                vec![1, 1, 3],
                "FP32",
                8,
                "`binary_data_size` `8` does not match shape `[1, 1, 3]` of FP32 (`12` bytes)",
            ),
            (vec![1, 1, 2], "FP32", 12, "does not match shape"),
            (
                vec![1, 1, 1],
                "FP32",
                4,
                "`binary_data_size` `4` but `8` bytes of binary data follow",
            ),
            (
                vec![usize::MAX, 2, 2],
                "FP32",
                8,
                "more bytes than can be counted",
            ),
            (vec![1, 1, 2], "INT8", 8, "datatype `INT8`"),
            (
                vec![1, 1, 2],
                "FP32",
                u64::MAX,
                "`18446744073709551615` does not match",
            ),
        ] {
            let e = input_values("eeg", &shape, dt, size, &bytes).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(says), "{says}: {}", e.message);
        }
    }

    #[test]
    fn bytes_elements_carry_their_length() {
        let mut out = Vec::new();
        bytes_tensor(["left", "é"], &mut out);
        assert_eq!(out, b"\x04\0\0\0left\x02\0\0\0\xc3\xa9");
    }
}
