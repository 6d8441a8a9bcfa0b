use super::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::json;

fn ok(text: &str) -> Sweep {
    match parse(text, "test.yaml") {
        Ok(s) => s,
        Err(e) => panic!("expected a valid sweep, got: {e}"),
    }
}

fn problems(text: &str) -> String {
    match parse(text, "test.yaml") {
        Ok(s) => panic!("expected violations, got {s:?}"),
        // Rendered as the command line shows it: the summary, then one problem per line.
        Err(Error::Problems { summary, details }) => format!("{summary}:\n{}", details.join("\n")),
        Err(e) => panic!("expected Error::Problems, got {e:?}"),
    }
}

fn dist(sweep: &Sweep, name: &str) -> Dist {
    match &sweep.parameters[name] {
        Param::Distribution(d) => d.clone(),
        other => panic!("`{name}` is not a distribution: {other:?}"),
    }
}

fn rng() -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(20261127)
}

#[test]
fn example_config_is_the_original_640_grid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sweep.yaml");
    let s = read(path).unwrap();
    assert_eq!(s.method, Method::Grid);
    assert_eq!(
        s.metric,
        Some(Metric {
            name: "accuracy".into(),
            goal: Goal::Maximize,
            target: None
        })
    );
    assert_eq!(s.grid_len(), Some(640));
    let grid = s.grid();
    assert_eq!(grid.len(), 640);
    // Parameters in name order, the last (`norm_trace`) varying fastest.
    assert_eq!(
        grid[0],
        serde_json::from_value::<BTreeMap<String, Value>>(json!({
            "C": 0.8, "gamma": "scale", "kernel": "linear", "log": true,
            "n_components": 5, "norm_trace": true
        }))
        .unwrap()
    );
    assert_eq!(grid[1]["norm_trace"], json!(false));
    assert_eq!(grid[639]["C"], json!(1.5));
    assert_eq!(grid[639]["n_components"], json!(60));
    let ids: std::collections::BTreeSet<String> = grid.iter().map(trial_id).collect();
    assert_eq!(ids.len(), 640, "trial ids collide");
}

#[test]
fn every_parameter_form_parses() {
    let s = ok(r#"
method: random
metric: {name: loss, goal: minimize, target: 0.1}
run_cap: 50
name: all forms
description: one of each
program: train.py
command: [python, "${program}"]
entity: someone
project: bci
early_terminate: {type: hyperband, min_iter: 3, strict: true}
parameters:
  k: {value: 7}
  k2: {distribution: constant, value: rbf}
  cat: {values: [a, b, c], probabilities: [0.2, 0.3, 0.5]}
  cat2: {distribution: categorical, values: [1, 2.5, true, [1, 2]]}
  i: {min: 1, max: 10}
  f: {min: 0, max: 1.5}
  u: {distribution: uniform, min: -1, max: 1}
  qu: {distribution: q_uniform, min: 0, max: 100, q: 5}
  lu: {distribution: log_uniform, min: -5, max: 0}
  luv: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  qlu: {distribution: q_log_uniform, min: 3, max: 6, q: 2}
  qluv: {distribution: q_log_uniform_values, min: 32, max: 256, q: 8}
  ilu: {distribution: inv_log_uniform, min: 1, max: 4}
  iluv: {distribution: inv_log_uniform_values, min: 0.01, max: 1}
  n: {distribution: normal, mu: 5, sigma: 2}
  n0: {distribution: normal}
  qn: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
  ln: {distribution: log_normal, mu: 0, sigma: 0.5}
  qln: {distribution: q_log_normal, mu: 3, sigma: 1, q: 1}
"#);
    assert_eq!(s.method, Method::Random);
    assert_eq!(s.run_cap, Some(50));
    assert_eq!(s.name.as_deref(), Some("all forms"));
    assert_eq!(s.description.as_deref(), Some("one of each"));
    assert_eq!(s.metric.as_ref().unwrap().target, Some(0.1));
    assert_eq!(
        s.early_terminate,
        Some(EarlyTerminate {
            min_iter: Some(3),
            max_iter: None,
            s: None,
            eta: 3,
            strict: true
        })
    );
    assert_eq!(s.parameters["k"], Param::Constant(json!(7)));
    assert_eq!(s.parameters["k2"], Param::Constant(json!("rbf")));
    assert_eq!(
        s.parameters["cat"],
        Param::Categorical {
            values: vec![json!("a"), json!("b"), json!("c")],
            probabilities: Some(vec![0.2, 0.3, 0.5])
        }
    );
    assert_eq!(
        s.parameters["cat2"],
        Param::Categorical {
            values: vec![json!(1), json!(2.5), json!(true), json!([1, 2])],
            probabilities: None
        }
    );
    // Inferred as W&B does: both integers → int_uniform, otherwise uniform.
    assert_eq!(dist(&s, "i"), Dist::IntUniform { min: 1, max: 10 });
    assert_eq!(dist(&s, "f"), Dist::Uniform { min: 0.0, max: 1.5 });
    assert_eq!(
        dist(&s, "qu"),
        Dist::QUniform {
            min: 0.0,
            max: 100.0,
            q: 5.0,
            ints: true
        }
    );
    assert_eq!(
        dist(&s, "n0"),
        Dist::Normal {
            mu: 0.0,
            sigma: 1.0
        }
    );
    let names: Vec<&str> = s
        .parameters
        .values()
        .filter_map(|p| match p {
            Param::Distribution(d) => Some(d.name()),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 15);
    for expected in [
        "uniform",
        "q_uniform",
        "log_uniform",
        "log_uniform_values",
        "q_log_uniform",
        "q_log_uniform_values",
        "inv_log_uniform",
        "inv_log_uniform_values",
        "normal",
        "q_normal",
        "log_normal",
        "q_log_normal",
        "int_uniform",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    // Grid is empty when a parameter is continuous.
    assert!(s.grid().is_empty());
    assert_eq!(s.grid_len(), None);
}

#[test]
fn hyperband_with_max_iter_and_minimal_files() {
    let s = ok(
        "method: bayes\nmetric: {name: acc}\nparameters: {x: {min: 0.0, max: 1.0}}\n\
                early_terminate: {type: hyperband, max_iter: 27, s: 2, eta: 2}\n",
    );
    assert_eq!(s.metric.unwrap().goal, Goal::Minimize, "W&B's default goal");
    let et = s.early_terminate.unwrap();
    assert_eq!((et.max_iter, et.s, et.eta), (Some(27), Some(2), 2));
    // Grid and random need no metric.
    let s = ok("method: grid\nparameters: {x: {values: [1, 2]}, y: {value: z}}\n");
    assert_eq!(s.metric, None);
    assert_eq!(s.grid().len(), 2);
}

#[test]
fn all_violations_are_listed_together() {
    let msg = problems(
        r#"
method: annealing
paramters: {}
metric: {goal: up, nme: x}
run_cap: -3
early_terminate: {type: median, min_iter: 0, max_iter: 4}
parameters:
  c: {min: 2, max: 1}
  kernel: {values: [linear, poly, rbf], probabilities: [0.3, 0.3, 0.3]}
  gamma: {values: [a, b], probabilities: [1.0]}
  lr: {distribution: log_uniform_values, min: 0, max: 1}
  n: {distribution: int_uniform, min: 0.5, max: 4}
  q: {distribution: q_uniform, min: 0, max: 1, q: -1}
  s: {distribution: normal, sigma: 0}
  d: {distribution: gaussian, min: 0, max: 1}
  e: {distribution: uniform, min: 0, max: 1, values: [1]}
  nested: {parameters: {a: {value: 1}}, value: 2}
  empty: {}
  scalar: 3
  big: {distribution: log_uniform, min: 0, max: 800}
  noq: {distribution: q_uniform, min: 0.1, max: 0.2, q: 1}
  typo: {values: [1], maxx: 3}
"#,
    );
    let expected = [
        "method: `annealing` is not one of grid, random, bayes",
        "unknown key `paramters` at top level",
        "metric.goal: `up` is not one of minimize, maximize",
        "metric: unknown key `nme`",
        "metric.name: required",
        "run_cap: `-3` is not a positive integer",
        "early_terminate.type: `median` is not `hyperband`",
        "early_terminate.min_iter: `0` is not a positive integer",
        "early_terminate: give exactly one of `min_iter` and `max_iter`",
        "early_terminate: `s` is required with `max_iter`",
        "parameters.c: `min` (2) must be below `max` (1)",
        "parameters.kernel: probabilities sum to 0.9, not 1",
        "parameters.gamma: 1 probabilities for 2 values",
        "parameters.lr: `min` (0) must be positive for `log_uniform_values`",
        "parameters.n: `min` (0.5) must be an integer for `int_uniform`",
        "parameters.q: `q` (-1) must be positive",
        "parameters.s: `sigma` (0) must be positive",
        "parameters.d: distribution `gaussian` is not one of constant, categorical",
        "parameters.e: `values` does not apply to `uniform`",
        "parameters.nested: a group of nested `parameters` takes no other keys (found `value`)",
        "parameters.empty: needs `value`, `values`, or `min` and `max`",
        "parameters.scalar: must be a map, not `3`",
        "parameters.big: `min` (0) and `max` (800) are exponents of e",
        "parameters.noq: no multiple of `q` (1) lies within the range",
        "parameters.typo: unknown key `maxx`",
    ];
    for e in expected {
        assert!(msg.contains(e), "missing `{e}` in:\n{msg}");
    }
    let first = msg.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "`test.yaml` is not a valid sweep ({} problems):",
            expected.len()
        ),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), expected.len() + 1, "{msg}");
}

#[test]
fn missing_required_keys_and_wrong_shapes() {
    let msg = problems("name: x\n");
    assert!(msg.contains("method: required (one of grid, random, bayes)"));
    assert!(msg.contains("parameters: required"));
    let msg = problems("method: bayes\nparameters: {}\n");
    assert!(msg.contains("metric: required for `bayes`"), "{msg}");
    assert!(msg.contains("parameters: must not be empty"), "{msg}");
    let msg = problems("- a\n- b\n");
    assert!(msg.contains("the file must be a map of keys"), "{msg}");
    let msg = problems("method: random\nparameters: [a]\n1: x\n");
    assert!(
        msg.contains("parameters: must be a map, not `[\"a\"]`"),
        "{msg}"
    );
    assert!(
        msg.contains("key `1` is not a string at top level"),
        "{msg}"
    );
    let msg = problems("method: random\nparameters: {x: {values: [.nan]}}\n");
    assert!(
        msg.contains("parameters.x.values[0]: `.nan` is not a plain value"),
        "{msg}"
    );
    assert!(matches!(
        parse("method: [unclosed", "bad.yaml"),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        read("/nonexistent/sweep.yaml"),
        Err(Error::Io { .. })
    ));
}

#[test]
fn grid_rejects_distributions_and_huge_grids() {
    let msg = problems(
        "method: grid\nparameters:\n  a: {min: 0.0, max: 1.0}\n  b: {distribution: int_uniform, min: 1, max: 3}\n",
    );
    assert!(
        msg.contains("parameters.a: `uniform` cannot be searched by grid (W&B's grid takes"),
        "{msg}"
    );
    assert!(
        !msg.contains("parameters.b"),
        "int_uniform is enumerated: {msg}"
    );
    let mut text = String::from("method: grid\nparameters:\n");
    for i in 0..7 {
        text.push_str(&format!(
            "  p{i}: {{values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}\n"
        ));
    }
    let msg = problems(&text);
    assert!(
        msg.contains("parameters: the grid has 10000000 combinations, more than 1000000"),
        "{msg}"
    );
}

#[test]
fn probabilities_within_1e_6_are_accepted_and_followed() {
    // Within 1e-6 of 1 is accepted (W&B's tolerance as briefed); 1e-5 off is not.
    ok("method: random\nparameters: {k: {values: [a, b], probabilities: [0.2500005, 0.75]}}\n");
    let msg = problems(
        "method: random\nparameters: {k: {values: [a, b], probabilities: [0.25001, 0.75]}}\n",
    );
    assert!(msg.contains("probabilities sum to 1.00001, not 1"), "{msg}");
    let msg =
        problems("method: random\nparameters: {k: {values: [a, b], probabilities: [1.5, -0.5]}}\n");
    assert!(
        msg.contains("probability `1.5` is not a number between 0 and 1"),
        "{msg}"
    );

    let s = ok(
        "method: random\nparameters: {k: {values: [a, b, c], probabilities: [0.1, 0.0, 0.9]}}\n",
    );
    let mut r = rng();
    let n = 20_000;
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        *counts
            .entry(s.parameters["k"].sample(&mut r).to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(counts.get("\"b\""), None, "zero probability drawn");
    let a = counts["\"a\""] as f64 / n as f64;
    // Binomial sd at p=0.1, n=20000 is 0.0021; 5 sd.
    assert!((a - 0.1).abs() < 0.011, "share of `a` {a}");
}

#[test]
fn grid_order_is_deterministic_and_follows_the_file() {
    let text = "method: grid\nparameters:\n  z: {values: [3, 1, 2]}\n  a: {values: [y, x]}\n  m: {value: k}\n";
    let s = ok(text);
    let g = s.grid();
    let pairs: Vec<(Value, Value)> = g.iter().map(|c| (c["a"].clone(), c["z"].clone())).collect();
    assert_eq!(
        pairs,
        vec![
            (json!("y"), json!(3)),
            (json!("y"), json!(1)),
            (json!("y"), json!(2)),
            (json!("x"), json!(3)),
            (json!("x"), json!(1)),
            (json!("x"), json!(2)),
        ]
    );
    assert!(g.iter().all(|c| c["m"] == json!("k")));
    assert_eq!(ok(text).grid(), g);
}

#[test]
fn sampling_stays_in_bounds_and_respects_int_q_and_log() {
    let s = ok(r#"
method: random
parameters:
  i: {min: -3, max: 4}
  u: {min: 0.5, max: 2.5}
  qu: {distribution: q_uniform, min: 0, max: 100, q: 5}
  qf: {distribution: q_uniform, min: 0, max: 1, q: 0.25}
  lu: {distribution: log_uniform, min: -5, max: 0}
  luv: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  qluv: {distribution: q_log_uniform_values, min: 32, max: 256, q: 8}
  ilu: {distribution: inv_log_uniform, min: 1, max: 4}
  iluv: {distribution: inv_log_uniform_values, min: 0.01, max: 1}
  qn: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
  ln: {distribution: log_normal, mu: 0, sigma: 0.5}
"#);
    let mut r = rng();
    let n = 20_000;
    let mut draws: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for _ in 0..n {
        for (k, p) in &s.parameters {
            draws.entry(k.as_str()).or_default().push(p.sample(&mut r));
        }
    }
    for (k, vs) in &draws {
        let d = dist(&s, k);
        if let Some((lo, hi)) = d.bounds() {
            for v in vs {
                let x = v.as_f64().unwrap();
                assert!(lo <= x && x <= hi, "{k}: {x} outside {lo}..{hi}");
            }
        }
        if d.is_integer() {
            assert!(vs.iter().all(|v| v.is_i64()), "{k} yields non-integers");
        } else {
            assert!(vs.iter().all(|v| v.is_f64()), "{k} yields integers");
        }
    }
    let f = |k: &str| -> Vec<f64> { draws[k].iter().map(|v| v.as_f64().unwrap()).collect() };
    // int_uniform reaches both ends.
    let i = f("i");
    assert!(i.contains(&-3.0) && i.contains(&4.0));
    // Multiples of q, ends included.
    assert!(f("qu").iter().all(|x| x % 5.0 == 0.0));
    assert!(f("qu").contains(&0.0) && f("qu").contains(&100.0));
    assert!(f("qf").iter().all(|x| (x * 4.0).fract() == 0.0));
    assert!(f("qluv").iter().all(|x| x % 8.0 == 0.0));
    assert!(f("qn").iter().all(|x| x % 2.0 == 0.0));
    // Log-uniform: the log is uniform, so its median is the middle of the log range.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let lu = f("lu");
    assert!(lu.iter().all(|x| (-5f64).exp() <= *x && *x <= 1.0));
    // Median of n uniform draws has sd ≈ range/(2√n) = 0.018 in log units; 0.08 is > 4 sd.
    assert!((median(lu.iter().map(|x| x.ln()).collect()) + 2.5).abs() < 0.08);
    let luv: Vec<f64> = f("luv").iter().map(|x| x.log10()).collect();
    assert!((median(luv) + 2.5).abs() < 0.05);
    // inv_log_uniform with exponents 1..4: values in e^-4..e^-1.
    let ilu = f("ilu");
    assert!(ilu
        .iter()
        .all(|x| (-4f64).exp() <= *x && *x <= (-1f64).exp()));
    assert!((median(ilu.iter().map(|x| -x.ln()).collect()) - 2.5).abs() < 0.05);
    let iluv = f("iluv");
    assert!(iluv.iter().all(|x| (0.01..=1.0).contains(x)));
    // log_normal: median e^mu = 1.
    assert!((median(f("ln")) - 1.0).abs() < 0.03);
    assert!(f("ln").iter().all(|x| *x > 0.0));
    // Uniform: mean 1.5, sd of the mean 0.577/√n = 0.004.
    let u = f("u");
    assert!((u.iter().sum::<f64>() / n as f64 - 1.5).abs() < 0.02);
}

#[test]
fn unit_mapping_round_trips() {
    let s = ok(r#"
method: bayes
metric: {name: acc, goal: maximize}
parameters:
  i: {min: -3, max: 4}
  u: {min: 0.5, max: 2.5}
  qu: {distribution: q_uniform, min: 0, max: 100, q: 5}
  lu: {distribution: log_uniform, min: -5, max: 0}
  qluv: {distribution: q_log_uniform_values, min: 32, max: 256, q: 8}
  ilu: {distribution: inv_log_uniform, min: 1, max: 4}
  n: {distribution: normal, mu: 5, sigma: 2}
  qn: {distribution: q_normal, mu: 10, sigma: 3, q: 2}
  ln: {distribution: log_normal, mu: 0, sigma: 0.5}
"#);
    let mut r = rng();
    for (k, p) in &s.parameters {
        let Param::Distribution(d) = p else {
            unreachable!()
        };
        for _ in 0..2000 {
            // Every drawable value maps back to itself.
            let v = p.sample(&mut r);
            let u = d.to_unit(&v).unwrap();
            assert!((0.0..=1.0).contains(&u), "{k}: {u}");
            let back = d.from_unit(u);
            let (x, y) = (v.as_f64().unwrap(), back.as_f64().unwrap());
            // 1e-9 relative: the log and normal maps go through ln/exp and the erfc fit.
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                "{k}: {v} → {u} → {back}"
            );
            if !d.is_integer() && !k.starts_with('q') {
                // Continuous ones also map unit → value → unit.
                let w: f64 = r.gen_range(0.001..0.999);
                let u2 = d.to_unit(&d.from_unit(w)).unwrap();
                assert!((u2 - w).abs() < 1e-9, "{k}: {w} → {u2}");
            }
        }
        assert_eq!(d.to_unit(&json!("text")), None);
    }
    // Ends of the unit interval are the ends of the range.
    let d = dist(&s, "lu");
    assert!((d.from_unit(0.0).as_f64().unwrap() - (-5f64).exp()).abs() < 1e-15);
    assert!((d.from_unit(1.0).as_f64().unwrap() - 1.0).abs() < 1e-15);
    assert_eq!(dist(&s, "i").from_unit(1.0), json!(4));
    assert_eq!(dist(&s, "i").from_unit(0.0), json!(-3));
    assert_eq!(dist(&s, "qluv").bounds(), Some((32.0, 256.0)));
    assert_eq!(dist(&s, "n").bounds(), None);
    assert!(dist(&s, "n").from_unit(0.0).as_f64().unwrap().is_finite());
}

#[test]
fn normal_cdf_and_quantile_match_scipy() {
    // scipy 1.17.1 scipy.stats.norm.cdf / norm.ppf; erfcc's documented 1.2e-7 relative error.
    for (z, p) in [(1.0, 0.8413447460685429), (-2.5, 0.006209665325776132)] {
        assert!((normal_cdf(z) - p).abs() <= 1.2e-7 * p, "cdf({z})");
    }
    // The quantile is refined against our cdf, so it inherits the cdf's error: ~1e-7 × dz/dp.
    for (p, z) in [
        (0.975, 1.959963984540054),
        (0.001, -3.090232306167813),
        (1e-10, -6.361340902404056),
    ] {
        assert!(
            (normal_quantile(p) - z).abs() < 1e-6,
            "ppf({p}) = {}",
            normal_quantile(p)
        );
    }
}

#[test]
fn trial_id_is_stable_and_order_independent() {
    let a: BTreeMap<String, Value> =
        serde_json::from_value(json!({"c": 1.0, "kernel": "rbf", "opts": {"b": 1, "a": 2}}))
            .unwrap();
    let mut b = BTreeMap::new();
    b.insert("opts".to_string(), json!({"a": 2, "b": 1}));
    b.insert("kernel".to_string(), json!("rbf"));
    b.insert("c".to_string(), json!(1.0));
    assert_eq!(trial_id(&a), trial_id(&b));
    assert_eq!(trial_id(&a).len(), 12);
    assert!(trial_id(&a).chars().all(|c| c.is_ascii_hexdigit()));
    // sha256 of `{"c":1.0,"kernel":"rbf"}`, computed with Python's hashlib.
    let small: BTreeMap<String, Value> =
        serde_json::from_value(json!({"kernel": "rbf", "c": 1.0})).unwrap();
    assert_eq!(trial_id(&small), SMALL_ID);
    b.insert("c".to_string(), json!(1.2));
    assert_ne!(trial_id(&a), trial_id(&b));
}

const SMALL_ID: &str = "60c7f346ed02";

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let _ = parse(&String::from_utf8_lossy(&bytes), "garbage");
    }

    #[test]
    fn yaml_like_garbage_never_panics(text in "[a-z_:{}\\[\\], \n0-9.-]{0,120}") {
        let _ = parse(&format!("method: random\nparameters:\n  x: {text}\n"), "garbage");
        let _ = parse(&text, "garbage");
    }
}

#[test]
fn duplicate_keys_and_extreme_ranges_are_errors() {
    assert!(parse(
        "method: grid\nmethod: random\nparameters: {x: {value: 1}}\n",
        "dup"
    )
    .is_err());
    let msg = problems("method: random\nparameters: {x: {min: -1.0e308, max: 1.0e308}}\n");
    assert!(msg.contains("parameters.x: the range"), "{msg}");
    let msg = problems(
        "method: random\nparameters: {x: {distribution: int_uniform, min: -9223372036854775808, max: 9223372036854775807}}\n",
    );
    assert!(msg.contains("is too wide"), "{msg}");
}

#[test]
fn exponent_notation_is_a_number() {
    // PyYAML (YAML 1.1) reads `1e-5` as a string; W&B users write it anyway, and YAML 1.2
    // (serde_norway) reads it as the number they meant.
    let s = ok("method: random\nparameters: {lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}}\n");
    assert_eq!(
        dist(&s, "lr"),
        Dist::LogUniformValues {
            min: 1e-5,
            max: 1e-1
        }
    );
}

#[test]
fn nested_parameters_flatten_to_dotted_names_and_nest_back() {
    let s = ok(r#"
method: grid
parameters:
  svm:
    parameters:
      c: {values: [0.5, 1.0]}
      kernel: {value: rbf}
  csp: {parameters: {n_components: {values: [4, 6]}}}
  a-b: {values: [1]}
"#);
    let names: Vec<&str> = s.parameters.keys().map(String::as_str).collect();
    assert_eq!(names, ["a-b", "csp.n_components", "svm.c", "svm.kernel"]);
    assert_eq!(s.nested["svm.c"], ["svm", "c"]);
    assert!(!s.nested.contains_key("a-b"));
    let g = s.grid();
    assert_eq!(g.len(), 4);
    // W&B's order: `csp` sorts before `svm` and, as a group named `csp`, the same way against
    // `a-b` as the name `csp` would; the last parameter (`svm.c`) varies fastest.
    assert_eq!(g[0]["csp.n_components"], json!(4));
    assert_eq!(g[1]["svm.c"], json!(1.0));
    assert_eq!(
        Value::Object(s.nest(&g[0])),
        json!({"a-b": 1, "csp": {"n_components": 4}, "svm": {"c": 0.5, "kernel": "rbf"}})
    );
}

#[test]
fn nested_groups_are_ordered_by_their_own_name() {
    // `a` (a group) sorts before `a-b` in Python's `sorted`, though `a.x` > `a-b` as strings.
    let s = ok("method: grid\nparameters:\n  a-b: {values: [1, 2]}\n  a: {parameters: {x: {values: [3, 4]}}}\n");
    let g = s.grid();
    let order: Vec<(Value, Value)> = g
        .iter()
        .map(|c| (c["a.x"].clone(), c["a-b"].clone()))
        .collect();
    assert_eq!(order[0], (json!(3), json!(1)));
    assert_eq!(
        order[1],
        (json!(3), json!(2)),
        "`a-b` varies fastest: {order:?}"
    );
}

#[test]
fn ambiguous_and_malformed_groups_are_refused() {
    let msg = problems(
        "method: grid\nparameters:\n  a.b: {values: [1]}\n  a: {parameters: {b: {values: [2]}}}\n",
    );
    assert!(msg.contains("`a.b` names two parameters"), "{msg}");
    let msg = problems("method: grid\nparameters:\n  a: {parameters: {}}\n  b: {parameters: 3}\n");
    assert!(
        msg.contains("parameters.a.parameters: must not be empty"),
        "{msg}"
    );
    assert!(
        msg.contains("parameters.b.parameters: must be a map, not `3`"),
        "{msg}"
    );
    let msg = problems("method: grid\nparameters:\n  a: {parameters: {c: {min: 2, max: 1}}}\n");
    assert!(
        msg.contains("parameters.a.parameters.c: `min` (2) must be below `max` (1)"),
        "{msg}"
    );
}

#[test]
fn grids_enumerate_int_and_q_uniform_as_w_and_b_does() {
    let s = ok(r#"
method: grid
parameters:
  i: {distribution: int_uniform, min: -1, max: 2}
  qi: {distribution: q_uniform, min: 0, max: 10, q: 4}
  qf: {distribution: q_uniform, min: 0.1, max: 0.4, q: 0.1}
  qd: {distribution: q_uniform, min: 0, max: 3}
"#);
    let axis = |name: &str| -> Vec<Value> {
        let mut seen = Vec::new();
        for c in s.grid() {
            if !seen.contains(&c[name]) {
                seen.push(c[name].clone());
            }
        }
        seen
    };
    assert_eq!(axis("i"), [json!(-1), json!(0), json!(1), json!(2)]);
    // `arange` leaves `max` out and gives integers only when min, max and q all are.
    assert_eq!(axis("qi"), [json!(0), json!(4), json!(8)]);
    assert_eq!(axis("qd"), [json!(0.0), json!(1.0), json!(2.0)]);
    // NumPy's float `arange(0.1, 0.4, 0.1)` is [0.1, 0.2, 0.30000000000000004, 0.4]: the
    // count is ceil(0.30000000000000004 / 0.1) = 4, so `max` can slip in (NumPy 2.4.6).
    assert_eq!(
        axis("qf"),
        [
            json!(0.1),
            json!(0.2),
            json!(0.30000000000000004),
            json!(0.4)
        ]
    );
    assert_eq!(s.grid_len(), Some(4 * 3 * 4 * 3));
    let msg = problems("method: grid\nparameters:\n  k: {values: [a, b], probabilities: [0.5, 0.5]}\n  l: {distribution: q_log_uniform_values, min: 1, max: 9, q: 1}\n");
    assert!(
        msg.contains("parameters.k: `probabilities` cannot be searched by grid"),
        "{msg}"
    );
    assert!(
        msg.contains("parameters.l: `q_log_uniform_values` cannot be searched by grid"),
        "{msg}"
    );
    let msg = problems("method: grid\nparameters:\n  i: {min: 0, max: 100000000}\n");
    assert!(msg.contains("the grid has 100000001 combinations"), "{msg}");
}

#[test]
fn deprecated_forms_run_with_a_note_and_unsupported_ones_are_named() {
    let s = ok("method: random\nparameters:\n  c: {distribution: log_uniform, min: -2, max: 2}\n  g: {distribution: q_log_uniform, min: 0, max: 3}\n  h: {min: 1, max: 4}\n");
    assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    assert!(
        s.notes[0].contains("`c` uses `log_uniform`")
            && s.notes[0].contains("`log_uniform_values`")
    );
    assert!(s.notes[1].contains("`q_log_uniform_values`"));
    assert!(s.notes.iter().all(|n| !n.contains('\n')));

    let s = ok("method: random\napiVersion: v1\nkind: sweep\ncontroller: {type: local}\nmetric: {name: accuracy, impute: worst}\nparameters:\n  k: {distribution: categorical_w_probabilities, values: [a, b], probabilities: [0.25, 0.75]}\n");
    assert!(
        matches!(&s.parameters["k"], Param::Categorical { probabilities: Some(p), .. } if p == &[0.25, 0.75])
    );

    let msg = problems("method: custom\nmetric: {name: x, impute: best}\nparameters:\n  b: {distribution: beta, a: 2, b: 3}\n  q: {distribution: q_beta}\n");
    assert!(
        msg.contains("method: `custom` is run by W&B's own sweep controller"),
        "{msg}"
    );
    assert!(
        msg.contains("metric.impute: `best` is not supported"),
        "{msg}"
    );
    assert!(
        msg.contains("parameters.b: distribution `beta` is not supported"),
        "{msg}"
    );
    assert!(
        msg.contains("parameters.q: distribution `q_beta` is not supported"),
        "{msg}"
    );
}
