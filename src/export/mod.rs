//! Models that leave bciops: the served pipeline in formats other runtimes execute.
//!
//! Today one format, ONNX ([`onnx`]): the whole pipeline from a raw trial to a label and the
//! decision values, as one graph of standard operators.

pub mod onnx;
