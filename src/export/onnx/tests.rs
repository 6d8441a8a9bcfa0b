use super::*;
use crate::signal::filter::{BandPass, FilterMode};
use ndarray::Array2;

fn meta(mode: FilterMode) -> FilterMeta {
    let band = BandPass::new(8.0, 30.0, 4, 250.0).unwrap();
    FilterMeta {
        kind: "butterworth".into(),
        order: 4,
        band: [8.0, 30.0],
        mode,
        per_trial: true,
        sos: band.sos(),
    }
}

#[test]
fn the_band_pass_is_the_matrix_of_its_impulse_responses() {
    // What `band_pass` relies on: filtering is linear in the samples, padding and initial
    // conditions included, so x · H equals filtering x (to float64 rounding).
    let samples = 300;
    for mode in [FilterMode::ZeroPhase, FilterMode::Causal] {
        let m = meta(mode);
        let h = impulse_responses(&m, samples).unwrap();
        let x = Array2::from_shape_fn((3, samples), |(c, t)| {
            20.0 * ((t as f64) * 0.37 * (c as f64 + 1.0)).sin() + (t % 7) as f64 - 3.0 * c as f64
        });
        let mut filtered = x.clone();
        filter::filter_rows(&m.sos, mode, &mut filtered).unwrap();
        let product = x.dot(&h);
        let scale = filtered.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
        let worst = (&product - &filtered)
            .iter()
            .fold(0.0_f64, |a, v| a.max(v.abs()));
        assert!(worst <= 1e-12 * scale, "{mode}: {worst} against {scale}");
    }
}

#[test]
fn graph_builder_encodes_what_onnx_decodes() {
    let mut g = Graph::default();
    let x = g.input(INPUT, elem::FLOAT, &[Dim::Named("batch"), Dim::Fixed(2)]);
    let c = g.f64s("c", &[2], &[1.5, -2.0]);
    let y = g.op2("Add", &x, &c);
    g.output(
        &y,
        SCORES,
        elem::DOUBLE,
        &[Dim::Named("batch"), Dim::Fixed(2)],
    );
    let proto = ModelProto {
        ir_version: IR_VERSION,
        graph: Some(g.into_proto("t", "")),
        ..ModelProto::default()
    };
    let bytes = proto.encode_to_vec();
    let back = ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, proto);
    let graph = back.graph.unwrap();
    assert_eq!(graph.initializer[0].raw_data.len(), 16);
    assert_eq!(graph.node[1].op_type, "Identity");
    assert_eq!(graph.output[0].name, SCORES);
}
