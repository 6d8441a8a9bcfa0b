//! `GET /openapi.json`: an OpenAPI 3.1 description of every endpoint.

use axum::Json;
use serde_json::{json, Value};

pub async fn document() -> Json<Value> {
    Json(spec())
}

/// The document itself (also checked by a unit test against the router's routes).
pub fn spec() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let err = |what: &str| json!({ "description": what, "content": { "application/json": { "schema": error } } });
    let json_ok = |what: &str, schema: Value| json!({ "description": what, "content": { "application/json": { "schema": schema } } });
    let obj = json!({ "type": "object" });
    let predict_errors = |ok: Value| {
        json!({
            "200": ok,
            "400": err("malformed body, wrong shape, channel count or trial length, non-finite value; for V2 an unknown input or output name, or binary data lengths that disagree"),
            "404": err("unknown model name, or a version not served"),
            "408": err("body not in within --body-timeout, or arriving slower than --min-body-rate"),
            "413": err("body larger than --max-body-bytes"),
            "415": err("unsupported content type"),
            "500": err("internal error (never a crash)"),
            "503": err("no model loaded yet, or --max-concurrency requests already running (Retry-After: 1)"),
            "504": err("the prediction took longer than --timeout once the body was in")
        })
    };
    let infer = json!({
        "summary": "V2 inference: one FP32/FP64 input `eeg` [N, C, S]; outputs `labels` (BYTES [N]) and `scores` (FP64 [N, K] SVM decision values), or those named in `outputs`",
        "parameters": [name_param(), {
            "name": "Inference-Header-Content-Length", "in": "header", "required": false,
            "description": "binary tensor data extension: the length of the JSON header; the raw little-endian bytes of the input (`parameters.binary_data_size`) follow it",
            "schema": { "type": "integer", "minimum": 0 } }],
        "requestBody": { "required": true, "content": {
            "application/json": { "schema": { "$ref": "#/components/schemas/InferRequest" } },
            "application/octet-stream": { "schema": { "type": "string", "format": "binary",
                "description": "binary tensor data extension: the InferRequest JSON, then the input's bytes" } } } },
        "responses": predict_errors(json!({
            "description": "the outputs asked for; with binary outputs (`binary_data`, `binary_data_output`) the body is the JSON header (`Inference-Header-Content-Length` bytes) then each binary output's bytes, BYTES elements prefixed by their 4-byte little-endian length",
            "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/InferResponse" } },
                "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } }))
    });
    let mut versioned_infer = infer.clone();
    versioned_infer["parameters"]
        .as_array_mut()
        .expect("a list")
        .insert(1, version_param());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bciops serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Motor-imagery EEG classification: raw trials (channels × samples, µV) in, class labels out. The model's own band-pass, channels and window are applied."
        },
        "paths": {
            "/classify": { "post": {
                "summary": "Classify trials (the original BentoML request)",
                "parameters": [{ "name": "shape", "in": "query", "required": false,
                    "description": "for application/octet-stream: `N,C,S` or `C,S` (also the X-Tensor-Shape header); default: the model's channels × samples",
                    "schema": { "type": "string" } }],
                "requestBody": { "required": true, "content": {
                    "application/json": { "schema": { "$ref": "#/components/schemas/Trials" } },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary",
                        "description": "little-endian float32, trials × channels × samples, row-major" } },
                    "application/x-npy": { "schema": { "type": "string", "format": "binary",
                        "description": "a NumPy .npy array, float32 or float64, [N, C, S] or [C, S]" } }
                } },
                "responses": predict_errors(json_ok("one label per trial", json!({ "type": "array", "items": { "type": "string" }, "example": ["left"] })))
            } },
            "/v2": { "get": { "summary": "V2 server metadata", "responses": { "200": json_ok("name, version, extensions", obj.clone()) } } },
            "/v2/health/live": { "get": { "summary": "V2 liveness", "responses": { "200": json_ok("live", obj.clone()) } } },
            "/v2/health/ready": { "get": { "summary": "V2 readiness", "responses": { "200": json_ok("ready", obj.clone()), "503": err("not ready") } } },
            "/v2/models/{name}": { "get": {
                "summary": "V2 model metadata", "parameters": [name_param()],
                "responses": { "200": json_ok("name, versions, platform, inputs, outputs", obj.clone()), "404": err("unknown model"), "503": err("no model loaded yet") } } },
            "/v2/models/{name}/ready": { "get": {
                "summary": "V2 model readiness", "parameters": [name_param()],
                "responses": { "200": json_ok("ready", obj.clone()), "404": err("unknown model"), "503": err("not ready") } } },
            "/v2/models/{name}/infer": { "post": infer.clone() },
            "/v2/models/{name}/versions/{version}": { "get": {
                "summary": "V2 model metadata of the version served", "parameters": [name_param(), version_param()],
                "responses": { "200": json_ok("name, versions, platform, inputs, outputs", obj.clone()), "404": err("unknown model or a version not served"), "503": err("no model loaded yet") } } },
            "/v2/models/{name}/versions/{version}/ready": { "get": {
                "summary": "V2 readiness of the version served", "parameters": [name_param(), version_param()],
                "responses": { "200": json_ok("ready", obj.clone()), "404": err("unknown model or a version not served"), "503": err("not ready") } } },
            "/v2/models/{name}/versions/{version}/infer": { "post": versioned_infer },
            "/livez": { "get": { "summary": "Liveness: the process answers", "responses": { "200": json_ok("live", obj.clone()) } } },
            "/readyz": { "get": { "summary": "Readiness: a model is loaded and answered a warm-up prediction",
                "responses": { "200": json_ok("status, model, version", obj.clone()), "503": err("not ready or shutting down") } } },
            "/metrics": { "get": { "summary": "Prometheus text exposition",
                "responses": { "200": { "description": "metrics", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": json_ok("OpenAPI 3.1", obj) } } }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
            "Trials": { "type": "array", "description": "trials × channels × samples (one trial channels × samples is also accepted)",
                "items": { "type": "array", "items": { "type": "array", "items": { "type": "number" } } } },
            "Tensor": { "type": "object", "required": ["name", "shape", "datatype"], "properties": {
                "name": { "type": "string" }, "shape": { "type": "array", "items": { "type": "integer" } },
                "datatype": { "type": "string", "enum": ["FP32", "FP64", "BYTES"] },
                "data": { "type": "array", "description": "flat row-major or nested; absent when the values are binary data" },
                "parameters": { "type": "object", "properties": {
                    "binary_data_size": { "type": "integer", "minimum": 0, "description": "bytes of binary data after the JSON header" } } } } },
            "InferRequest": { "type": "object", "required": ["inputs"], "properties": {
                "id": { "type": "string" },
                "inputs": { "type": "array", "minItems": 1, "maxItems": 1, "items": { "$ref": "#/components/schemas/Tensor" } },
                "outputs": { "type": "array", "items": { "type": "object", "required": ["name"], "properties": {
                    "name": { "type": "string", "enum": ["labels", "scores"] },
                    "parameters": { "type": "object", "properties": { "binary_data": { "type": "boolean" } } } } } },
                "parameters": { "type": "object", "properties": { "binary_data_output": { "type": "boolean" } } } } },
            "InferResponse": { "type": "object", "properties": {
                "model_name": { "type": "string" }, "model_version": { "type": "string" }, "id": { "type": "string" },
                "outputs": { "type": "array", "items": { "$ref": "#/components/schemas/Tensor" } } } }
        } }
    })
}

fn version_param() -> Value {
    json!({ "name": "version", "in": "path", "required": true, "schema": { "type": "string" },
        "description": "the version served (`versions` of the model metadata); any other answers 404" })
}

fn name_param() -> Value {
    json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } })
}
