//! What makes a model directory an MLflow model that MLflow itself can load: the `onnx` and
//! `python_function` flavors of `MLmodel`, written as `mlflow.onnx.save_model` writes them
//! (mlflow 3.17.2), and the environment files they name. `mlflow.pyfunc.load_model` then runs
//! `model.onnx` with onnxruntime; the `bciops` flavor stays for bciops itself.

use std::fmt::Write as _;

/// The versions the environment files pin: the ones the tests load the model with
/// (`scripts/requirements-mlflow.txt`).
pub const MLFLOW_VERSION: &str = "3.17.2";
pub const ONNX_VERSION: &str = "1.23.1";
pub const ONNXRUNTIME_VERSION: &str = "1.30.0";
/// The Python those pins were tested with (MLflow records the interpreter that saved a
/// model; `mlflow models serve --env-manager virtualenv` installs this one).
pub const PYTHON_VERSION: &str = "3.11.7";

/// The file the flavors point to.
pub const ONNX_FILE: &str = "model.onnx";

/// Lines of `MLmodel`'s `flavors:` map after `bciops` (two-space indented keys, sorted as
/// MLflow's YAML writer sorts them).
pub fn flavor_lines() -> String {
    let mut y = String::new();
    let _ = writeln!(y, "  onnx:");
    let _ = writeln!(y, "    code: null");
    let _ = writeln!(y, "    data: {ONNX_FILE}");
    let _ = writeln!(y, "    onnx_session_options: null");
    let _ = writeln!(y, "    onnx_version: {ONNX_VERSION}");
    let _ = writeln!(y, "    providers:");
    let _ = writeln!(y, "    - CUDAExecutionProvider");
    let _ = writeln!(y, "    - CPUExecutionProvider");
    let _ = writeln!(y, "  python_function:");
    let _ = writeln!(y, "    data: {ONNX_FILE}");
    let _ = writeln!(y, "    env:");
    let _ = writeln!(y, "      conda: conda.yaml");
    let _ = writeln!(y, "      virtualenv: python_env.yaml");
    let _ = writeln!(y, "    loader_module: mlflow.onnx");
    let _ = writeln!(y, "    python_version: {PYTHON_VERSION}");
    y
}

/// The environment files the `python_function` flavor names: (file name, text).
pub fn environment_files() -> Vec<(&'static str, String)> {
    let requirements = [
        format!("mlflow=={MLFLOW_VERSION}"),
        format!("onnx=={ONNX_VERSION}"),
        format!("onnxruntime=={ONNXRUNTIME_VERSION}"),
    ];
    let mut conda = String::new();
    let _ = writeln!(conda, "channels:");
    let _ = writeln!(conda, "- conda-forge");
    let _ = writeln!(conda, "dependencies:");
    let _ = writeln!(conda, "- python={PYTHON_VERSION}");
    let _ = writeln!(conda, "- pip<=26.3");
    let _ = writeln!(conda, "- pip:");
    for r in &requirements {
        let _ = writeln!(conda, "  - {r}");
    }
    let _ = writeln!(conda, "name: mlflow-env");
    let mut python_env = String::new();
    let _ = writeln!(python_env, "python: {PYTHON_VERSION}");
    let _ = writeln!(python_env, "build_dependencies:");
    let _ = writeln!(python_env, "- pip==26.3");
    let _ = writeln!(python_env, "- setuptools==65.5.0");
    let _ = writeln!(python_env, "- wheel");
    let _ = writeln!(python_env, "dependencies:");
    let _ = writeln!(python_env, "- -r requirements.txt");
    vec![
        ("conda.yaml", conda),
        ("python_env.yaml", python_env),
        ("requirements.txt", requirements.join("\n") + "\n"),
    ]
}

/// `signature.outputs`: what the ONNX graph returns, named as its outputs.
pub fn signature_outputs(n_scores: usize) -> String {
    format!(
        r#"[{{"name": "labels", "type": "tensor", "tensor-spec": {{"dtype": "str", "shape": [-1]}}}}, {{"name": "scores", "type": "tensor", "tensor-spec": {{"dtype": "float64", "shape": [-1, {n_scores}]}}}}]"#
    )
}

/// A model's MLflow identity: 32 hex digits, as `uuid.uuid4().hex`.
pub fn new_model_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    // RFC 4122 version 4, variant 1, as uuid4.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
