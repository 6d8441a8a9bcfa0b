//! A small builder of ONNX graphs: named constants (initializers) and single-output nodes,
//! each given a fresh value name, so that a stage of the exporter reads as the arithmetic it
//! writes.

use super::proto::{
    attr_type, elem, AttributeProto, DimValue, Dimension, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};

/// A dimension of a declared input or output.
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(usize),
    /// A dimension named, not fixed: the batch.
    Named(&'static str),
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
}

impl Graph {
    /// A value name not used before, from `stem`.
    fn fresh(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("{stem}_{}", self.next)
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, elem_type, dims));
        name.to_owned()
    }

    /// Declares `value` as the graph output `name` (through an `Identity` node, so any value
    /// can be exposed under the name the contract gives it).
    pub fn output(&mut self, value: &str, name: &str, elem_type: i32, dims: &[Dim]) {
        self.nodes.push(NodeProto {
            input: vec![value.to_owned()],
            output: vec![name.to_owned()],
            name: format!("{name}_out"),
            op_type: "Identity".into(),
            ..NodeProto::default()
        });
        self.outputs.push(value_info(name, elem_type, dims));
    }

    /// A float64 constant of the given shape (row-major values).
    pub fn f64s(&mut self, stem: &str, dims: &[usize], values: &[f64]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            values.len(),
            "constant `{stem}`: shape and values disagree"
        );
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(stem, dims, elem::DOUBLE, raw, Vec::new())
    }

    /// A float64 scalar (shape `[]`), broadcast by the arithmetic operators.
    pub fn f64_scalar(&mut self, stem: &str, value: f64) -> String {
        self.f64s(stem, &[], &[value])
    }

    /// An int64 vector constant (axes, shapes).
    pub fn i64s(&mut self, stem: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(stem, &[values.len()], elem::INT64, raw, Vec::new())
    }

    /// A string vector constant.
    pub fn strings(&mut self, stem: &str, values: &[String]) -> String {
        let data = values.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.constant(stem, &[values.len()], elem::STRING, Vec::new(), data)
    }

    fn constant(
        &mut self,
        stem: &str,
        dims: &[usize],
        data_type: i32,
        raw_data: Vec<u8>,
        string_data: Vec<Vec<u8>>,
    ) -> String {
        let name = self.fresh(stem);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            string_data,
            name: name.clone(),
            raw_data,
            doc_string: String::new(),
        });
        name
    }

    /// A node of the default domain with one output, which is returned.
    pub fn op(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![out.clone()],
            name: format!("{out}_node"),
            op_type: op_type.to_owned(),
            attribute: attributes,
            ..NodeProto::default()
        });
        out
    }

    /// Shorthand for a node without attributes.
    pub fn op2(&mut self, op_type: &str, a: &str, b: &str) -> String {
        self.op(op_type, &[a, b], Vec::new())
    }

    pub fn into_proto(self, name: &str, doc: &str) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: name.to_owned(),
            initializer: self.initializers,
            doc_string: doc.to_owned(),
            input: self.inputs,
            output: self.outputs,
        }
    }
}

/// An integer attribute.
pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: attr_type::INT,
        i: value,
        ints: Vec::new(),
    }
}

/// A list-of-integers attribute.
pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: attr_type::INTS,
        i: 0,
        ints: values.to_vec(),
    }
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => DimValue::DimValue(*n as i64),
                Dim::Named(p) => DimValue::DimParam((*p).to_owned()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: String::new(),
    }
}
