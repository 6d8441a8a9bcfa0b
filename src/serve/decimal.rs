//! One JSON number, read and converted to the nearest f64 in a single pass: the float parser
//! of `/classify` bodies, where it dominates the cost of a request.
//!
//! The standard library's parser is correct but needs the token found first and then reads it
//! again. Here the grammar check and the digit accumulation are the same loop (eight digits at
//! a time where it can), and the conversion is the one the standard library also uses
//! (Clinger's exact fast path, then Eisel-Lemire, Lemire 2021, "Number Parsing at a Gigabyte
//! per Second"). Whatever that cannot decide — more than 19 significant digits, an exponent
//! outside ±342, a subnormal, a rare ambiguous product — goes to the standard library, so
//! every result is the correctly rounded one (tested against it bit for bit).

use super::pow5_table::{POW5, QMAX, QMIN};

/// The number starting at `start` (which must follow the JSON grammar exactly,
/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`; Rust's parser alone would also take `+1`,
/// `.5`, `1.`, `inf` and `NaN`), and the byte after it.
pub fn parse(s: &[u8], start: usize) -> Result<(f64, usize), String> {
    let bad = |p: usize| {
        let token = String::from_utf8_lossy(&s[start..(p + 1).min(s.len())]).into_owned();
        Err(format!("bad number `{token}` at byte {start}"))
    };
    let mut p = start;
    let negative = s.get(p) == Some(&b'-');
    if negative {
        p += 1;
    }
    let mut w: u64 = 0;
    let int_start = p;
    match s.get(p) {
        Some(b'0') => p += 1,
        Some(b'1'..=b'9') => p = digits(s, p, &mut w),
        _ => return bad(p),
    }
    let mut n_digits = p - int_start;
    let mut exponent: i64 = 0;
    if s.get(p) == Some(&b'.') {
        let frac_start = p + 1;
        let q = digits(s, frac_start, &mut w);
        if q == frac_start {
            return bad(p);
        }
        n_digits += q - frac_start;
        exponent = -((q - frac_start) as i64);
        p = q;
    }
    if let Some(b'e' | b'E') = s.get(p) {
        p += 1;
        let exp_negative = match s.get(p) {
            Some(b'-') => {
                p += 1;
                true
            }
            Some(b'+') => {
                p += 1;
                false
            }
            _ => false,
        };
        let first = p;
        let mut e: i64 = 0;
        while let Some(&c @ b'0'..=b'9') = s.get(p) {
            // Saturates far outside any finite double; the fallback then decides.
            if e < 0x1_0000 {
                e = e * 10 + i64::from(c - b'0');
            }
            p += 1;
        }
        if p == first {
            return bad(p - 1);
        }
        exponent += if exp_negative { -e } else { e };
    }
    if n_digits > 19 {
        // Leading zeros (`0.000…`) do not count; if 20 or more digits remain, `w` has
        // wrapped and the slow, exact path decides.
        let zeros = s[int_start..p]
            .iter()
            .take_while(|&&c| c == b'0' || c == b'.')
            .filter(|&&c| c == b'0')
            .count();
        if n_digits - zeros > 19 {
            return slow(s, start, p);
        }
    }
    let magnitude = if w == 0 {
        Some(0.0)
    } else {
        fast_path(w, exponent).or_else(|| eisel_lemire(w, exponent))
    };
    match magnitude {
        Some(m) => Ok((if negative { -m } else { m }, p)),
        None => slow(s, start, p),
    }
}

/// The standard library's parser on the token: exact for any number of digits.
fn slow(s: &[u8], start: usize, end: usize) -> Result<(f64, usize), String> {
    let token = std::str::from_utf8(&s[start..end]).map_err(|e| e.to_string())?;
    token
        .parse()
        .map(|v| (v, end))
        .map_err(|e| format!("bad number `{token}` ({e})"))
}

/// Accumulates the decimal digits from `p` into `w` (wrapping past 19 digits, which the caller
/// detects) and returns the position after the last one: eight at a time while eight bytes
/// are all digits, then one at a time. (Counting the digits of a partial word with bit
/// tricks instead, branch-free, measured 14 % slower on the original's payload: it makes each
/// step wait for the previous one's position.)
#[inline]
fn digits(s: &[u8], mut p: usize, w: &mut u64) -> usize {
    while let Some(chunk) = s.get(p..).and_then(<[u8]>::first_chunk::<8>) {
        let v = u64::from_le_bytes(*chunk);
        if !all_digits(v) {
            break;
        }
        *w = w.wrapping_mul(100_000_000).wrapping_add(eight_digits(v));
        p += 8;
    }
    while let Some(&c @ b'0'..=b'9') = s.get(p) {
        *w = w.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        p += 1;
    }
    p
}

/// Whether all eight bytes (little-endian in `v`) are ASCII digits: each byte's high nibble
/// is 3 and adding 6 does not carry out of its low nibble.
#[inline]
fn all_digits(v: u64) -> bool {
    (v & 0xF0F0_F0F0_F0F0_F0F0)
        | ((v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits, first digit in the low byte, in three multiplications.
#[inline]
fn eight_digits(mut v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
    v -= 0x3030_3030_3030_3030;
    v = v * 10 + (v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

/// Powers of ten a double holds exactly.
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path: `w` and `10^|q|` are both exact doubles, so one IEEE multiplication or
/// division rounds the exact value correctly.
#[inline]
fn fast_path(w: u64, q: i64) -> Option<f64> {
    if w > 1 << 53 || !(-22..=22).contains(&q) {
        return None;
    }
    let w = w as f64;
    Some(if q < 0 {
        w / EXACT_POW10[(-q) as usize]
    } else {
        w * EXACT_POW10[q as usize]
    })
}

/// Eisel-Lemire for `w × 10^q` (w > 0, at most 19 digits): the 128-bit product of `w` with a
/// truncated 5^q decides the rounding in all but rare cases, where it answers None. None too
/// for results that are subnormal or overflow, which the slow path handles. The steps follow
/// Rust's `core::num::dec2flt::lemire::compute_float` for f64.
fn eisel_lemire(w: u64, q: i64) -> Option<f64> {
    const MANTISSA_BITS: i32 = 52;
    const MINIMUM_EXPONENT: i32 = -1023;
    const INFINITE_POWER: i32 = 0x7FF;
    // Ties to even can only arise where 5^q is exact in 64 bits.
    const MIN_ROUND_TO_EVEN: i64 = -4;
    const MAX_ROUND_TO_EVEN: i64 = 23;
    if !(QMIN..=QMAX).contains(&q) {
        return None;
    }
    let lz = w.leading_zeros();
    let w = w << lz;
    let (lo, hi) = product(q, w);
    if lo == u64::MAX && !(-27..=55).contains(&q) {
        // The truncated table entry may have cost a carry: undecidable here.
        return None;
    }
    let upper = (hi >> 63) as i32;
    let shift = upper + 64 - MANTISSA_BITS - 3;
    let mut mantissa = hi >> shift;
    let mut power2 = power(q as i32) + upper - lz as i32 - MINIMUM_EXPONENT;
    if power2 <= 0 {
        return None;
    }
    if lo <= 1
        && (MIN_ROUND_TO_EVEN..=MAX_ROUND_TO_EVEN).contains(&q)
        && mantissa & 3 == 1
        && (mantissa << shift) == hi
    {
        // Exactly halfway with an even lower neighbour: do not round up.
        mantissa &= !1;
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if mantissa >= 2 << MANTISSA_BITS {
        mantissa = 1 << MANTISSA_BITS;
        power2 += 1;
    }
    mantissa &= !(1 << MANTISSA_BITS);
    if power2 >= INFINITE_POWER {
        return None;
    }
    Some(f64::from_bits(mantissa | (power2 as u64) << MANTISSA_BITS))
}

/// floor(log2(10^q)) + 63, exact for |q| < 1700.
#[inline]
fn power(q: i32) -> i32 {
    (q.wrapping_mul(152_170 + 65_536) >> 16) + 63
}

/// The high 128 bits of `w × 5^q` (as low, high words), to the precision the rounding needs:
/// a second multiplication by the table entry's low word only when the first leaves the
/// bits below the mantissa all ones.
#[inline]
fn product(q: i64, w: u64) -> (u64, u64) {
    const MASK: u64 = u64::MAX >> (52 + 3);
    let (hi5, lo5) = POW5[(q - QMIN) as usize];
    let first = u128::from(w) * u128::from(hi5);
    let (mut lo, mut hi) = (first as u64, (first >> 64) as u64);
    if hi & MASK == MASK {
        let second_hi = ((u128::from(w) * u128::from(lo5)) >> 64) as u64;
        lo = lo.wrapping_add(second_hi);
        if second_hi > lo {
            hi += 1;
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn value(text: &str) -> Result<f64, String> {
        let s = text.as_bytes();
        let (v, end) = parse(s, 0)?;
        assert_eq!(end, s.len(), "{text}: stopped at {end}");
        Ok(v)
    }

    fn same_as_std(text: &str) {
        let want: f64 = text.parse().unwrap();
        let got = value(text).unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{text}: {got:e} vs {want:e}");
    }

    #[test]
    fn digits_eight_at_a_time_and_one_at_a_time() {
        let v = u64::from_le_bytes(*b"12345678");
        assert!(all_digits(v));
        assert_eq!(eight_digits(v), 12_345_678);
        for not in [
            *b"1234567.",
            *b"/2345678",
            *b"1234:678",
            *b"12345 78",
            *b"\xff2345678",
        ] {
            assert!(!all_digits(u64::from_le_bytes(not)), "{not:?}");
        }
        let mut w = 0;
        assert_eq!(digits(b"x123", 1, &mut w), 4);
        assert_eq!(w, 123);
        let mut w = 0;
        assert_eq!(digits(b"1234567890123456789,", 0, &mut w), 19);
        assert_eq!(w, 1_234_567_890_123_456_789);
    }

    #[test]
    fn edge_cases_match_the_standard_library() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "0.0000000000000000000000000000001",
            "1",
            "9007199254740993",
            "9007199254740992.5",
            "16.117979049682617",
            "-0.17875055968761444",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9e-324",
            "1e-400",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "123456789012345678901234567890",
            "0.1000000000000000055511151231257827",
            "0.30000000000000004",
            "7.3177701707893310e15",
            "1e23",
            "8.988465674311579e307",
            "1E+2",
            "1e-0",
            "12345678901234567890",
            "1234567890123456789",
            "0.000000000000000000001234567890123456789",
            "1e99999999999",
            "1e-99999999999",
        ] {
            same_as_std(text);
        }
        // Halfway between two doubles: ties to even, both ways.
        same_as_std("9007199254740993"); // 2^53 + 1 → 2^53
        same_as_std("9007199254740995"); // 2^53 + 3 → 2^53 + 4
    }

    #[test]
    fn random_numbers_match_the_standard_library_bit_for_bit() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let mut texts = Vec::new();
        for _ in 0..100_000 {
            // Shortest reprs of float32 and float64 values, as Python and serde write them.
            texts.push(format!("{}", f64::from(rng.gen_range(-200.0f32..200.0))));
            let any = f64::from_bits(rng.gen::<u64>());
            if any.is_finite() {
                texts.push(format!("{any:e}"));
            }
            // Every exponent the table covers, with 1 to 19 random digits.
            let digits = rng.gen_range(1..=19u32);
            let m = rng.gen::<u64>() % 10u64.pow(digits);
            texts.push(format!("{m}e{}", rng.gen_range(-360..330)));
            // 17 significant digits (what `repr` of a float64 needs at most), and 26, which
            // only the slow path takes.
            let d = f64::from_bits(rng.gen_range(0x3000_0000_0000_0000u64..0x4800_0000_0000_0000));
            texts.push(format!("{d:.16e}"));
            texts.push(format!("{d:.25e}"));
        }
        for t in &texts {
            same_as_std(t);
            if !t.starts_with('-') {
                same_as_std(&format!("-{t}"));
            }
        }
    }

    #[test]
    fn eisel_lemire_decides_nearly_everything_itself_and_correctly() {
        // Called directly, so a broken table cannot hide behind the slow path.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let (mut decided, n) = (0, 200_000);
        for _ in 0..n {
            let w = rng.gen::<u64>() % 10u64.pow(rng.gen_range(1..=19)) + 1;
            let q = rng.gen_range(-300..=300);
            if let Some(v) = eisel_lemire(w, q) {
                let want: f64 = format!("{w}e{q}").parse().unwrap();
                assert_eq!(v.to_bits(), want.to_bits(), "{w}e{q}");
                decided += 1;
            }
        }
        assert!(decided > n * 99 / 100, "only {decided} of {n} decided");
    }

    #[test]
    fn exact_halfway_decimals_round_to_even() {
        // x.5 ulp written with all its digits: between 2^53 and 2^54 an ulp is 2, so odd
        // integers there are exact halfway points.
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(6);
        for _ in 0..10_000 {
            let n = (1u64 << 53) + 2 * rng.gen_range(0..1u64 << 52) + 1;
            let k = rng.gen_range(0..10);
            same_as_std(&n.to_string());
            same_as_std(&(n << k).to_string());
            same_as_std(&format!("{}.{}e{}", n / 10, n % 10, 1));
        }
    }

    #[test]
    fn grammar_is_strict() {
        for bad in [
            "", "-", "+1", ".5", "1.", "1e", "1e+", "-.5", "inf", "NaN", "1.e3",
        ] {
            let s = bad.as_bytes();
            let whole = parse(s, 0).map(|(_, end)| end == s.len());
            assert!(matches!(whole, Err(_) | Ok(false)), "{bad}: {whole:?}");
        }
        // A leading zero ends the number; the caller then refuses what follows.
        assert_eq!(parse(b"01", 0), Ok((0.0, 1)));
        assert_eq!(parse(b"[12.5e1]", 1), Ok((125.0, 7)));
    }
}
