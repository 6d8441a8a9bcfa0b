use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn cont(low: f64, high: f64) -> Dim {
    Dim::Continuous {
        low,
        high,
        log: false,
        q: None,
    }
}

/// One of every kind of dimension, including the degenerate ones.
fn every_kind() -> Space {
    Space::new(vec![
        cont(-3.0, 2.0),
        Dim::Continuous {
            low: 1e-4,
            high: 10.0,
            log: true,
            q: None,
        },
        Dim::Continuous {
            low: 0.1,
            high: 1.0,
            log: false,
            q: Some(0.05),
        },
        Dim::Continuous {
            low: 0.5,
            high: 100.0,
            log: true,
            q: Some(0.5),
        },
        Dim::Integer {
            low: -4,
            high: 7,
            log: false,
        },
        Dim::Integer {
            low: 1,
            high: 4096,
            log: true,
        },
        Dim::Categorical {
            n: 5,
            weights: None,
        },
        Dim::Categorical {
            n: 3,
            weights: Some(vec![0.0, 1.0, 3.0]),
        },
        cont(4.0, 4.0),
        Dim::Integer {
            low: 9,
            high: 9,
            log: true,
        },
        Dim::Continuous {
            low: 1.0,
            high: 1.2,
            log: false,
            q: Some(0.5),
        },
        Dim::Categorical {
            n: 1,
            weights: None,
        },
        // Half a step below `low` is negative: the first cell is cut at `low` in log space.
        Dim::Continuous {
            low: 0.1,
            high: 2.0,
            log: true,
            q: Some(0.5),
        },
    ])
    .unwrap()
}

/// The best loss after `budget` evaluations, by TPE or (with `None`) by random search.
fn best_after(
    tpe: Option<&Tpe>,
    space: &Space,
    f: impl Fn(&[f64]) -> f64,
    budget: usize,
    seed: u64,
) -> f64 {
    let mut r = rng(seed);
    let mut history: Vec<(Vec<f64>, f64)> = Vec::new();
    for _ in 0..budget {
        let p = match tpe {
            Some(t) => t.suggest(space, &history, &mut r),
            None => random_point(space, &mut r),
        };
        assert!(space.contains(&p), "{p:?} is outside the space");
        let loss = f(&p);
        history.push((p, loss));
    }
    history.iter().map(|h| h.1).fold(f64::INFINITY, f64::min)
}

/// Mean best loss over the seeds (50, or `$TPE_SEEDS`) for independent TPE, multivariate TPE
/// and random search at the same budget.
///
/// Reference, same objectives and budget, 100 seeds: Optuna 5.0.0 `TPESampler(gamma=ceil(0.25
/// n), n_startup_trials=10, n_ei_candidates=24)` reaches bowl 0.559, mixed 0.135, branin 1.072
/// with `multivariate=False` and 0.068, 0.053, 0.550 with `multivariate=True`; this module
/// (`TPE_SEEDS=100`) 0.46, 0.11, 1.09 and 0.068, 0.051, 0.54.
fn compare(name: &str, space: &Space, f: impl Fn(&[f64]) -> f64 + Copy, budget: usize) -> [f64; 3] {
    let n_seeds: u64 = std::env::var("TPE_SEEDS").map_or(50, |s| s.parse().unwrap());
    let independent = Tpe::default();
    let multivariate = Tpe {
        multivariate: true,
        ..Tpe::default()
    };
    let mean = |tpe: Option<&Tpe>| {
        (0..n_seeds)
            .map(|s| best_after(tpe, space, f, budget, 1000 + s))
            .sum::<f64>()
            / n_seeds as f64
    };
    let means = [
        mean(Some(&independent)),
        mean(Some(&multivariate)),
        mean(None),
    ];
    eprintln!(
        "{name}, {budget} evaluations, mean best over {n_seeds} seeds: \
         tpe {:.4}, multivariate tpe {:.4}, random {:.4}",
        means[0], means[1], means[2]
    );
    means
}

fn bowl(p: &[f64]) -> f64 {
    (p[0] - 1.0).powi(2) + (p[1] + 2.0).powi(2)
}

/// A real (on a grid), a log-scaled integer and a categorical whose choice 2 is best.
fn mixed(p: &[f64]) -> f64 {
    let offsets = [0.8, 0.4, 0.0, 1.2];
    4.0 * (p[0] - 0.3).powi(2) + 0.25 * (p[1].ln() - 30f64.ln()).powi(2) + offsets[p[2] as usize]
}

/// Branin-Hoo on [-5, 10] × [0, 15]; global minimum 0.397887 at three points.
fn branin(p: &[f64]) -> f64 {
    use std::f64::consts::PI;
    let (x1, x2) = (p[0], p[1]);
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

#[test]
fn tpe_beats_random_on_a_quadratic_bowl() {
    let space = Space::new(vec![cont(-10.0, 10.0), cont(-10.0, 10.0)]).unwrap();
    let [tpe, multi, random] = compare("bowl", &space, bowl, 40);
    // Measured 0.5137, 0.0742, 2.8581: ratios 0.18 and 0.026.
    assert!(tpe < 0.4 * random, "tpe {tpe} random {random}");
    assert!(multi < 0.1 * random, "multivariate {multi} random {random}");
    assert!(multi < 0.5 * tpe, "multivariate {multi} independent {tpe}");
}

#[test]
fn tpe_beats_random_on_a_mixed_space() {
    let space = Space::new(vec![
        Dim::Continuous {
            low: 0.0,
            high: 1.0,
            log: false,
            q: Some(0.01),
        },
        Dim::Integer {
            low: 1,
            high: 1000,
            log: true,
        },
        Dim::Categorical {
            n: 4,
            weights: None,
        },
    ])
    .unwrap();
    let [tpe, multi, random] = compare("mixed", &space, mixed, 40);
    // Measured 0.1137, 0.0531, 0.2328: ratios 0.49 and 0.23.
    assert!(tpe < 0.75 * random, "tpe {tpe} random {random}");
    assert!(multi < 0.4 * random, "multivariate {multi} random {random}");
}

#[test]
fn tpe_beats_random_on_branin() {
    let space = Space::new(vec![cont(-5.0, 10.0), cont(0.0, 15.0)]).unwrap();
    let [tpe, multi, random] = compare("branin", &space, branin, 40);
    // Measured 1.1677, 0.5508, 1.6703: ratios 0.70 (0.62 over 100 seeds) and 0.33.
    assert!(tpe < 0.85 * random, "tpe {tpe} random {random}");
    assert!(multi < 0.5 * random, "multivariate {multi} random {random}");
}

#[test]
fn suggestions_stay_in_bounds_on_their_grids() {
    for multivariate in [false, true] {
        stay_in_bounds(&Tpe {
            multivariate,
            ..Tpe::default()
        });
    }
}

fn stay_in_bounds(tpe: &Tpe) {
    let space = every_kind();
    let mut r = rng(3);
    let mut history = Vec::new();
    for i in 0..60 {
        let p = tpe.suggest(&space, &history, &mut r);
        assert!(space.contains(&p), "{p:?}");
        assert!(
            p[1] > 0.0 && p[3] > 0.0 && p[5] >= 1.0,
            "log dims positive: {p:?}"
        );
        assert_eq!(p[4].fract(), 0.0);
        assert_eq!(p[5].fract(), 0.0);
        let k = (p[2] - 0.1) / 0.05;
        assert!((k - k.round()).abs() < 1e-9, "q grid: {}", p[2]);
        // Zero prior weight: never suggested before any observation makes it likely.
        assert_ne!(p[7], 0.0);
        assert_eq!(&p[8..12], &[4.0, 9.0, 1.0, 0.0]);
        // Some failures, and ties, to exercise the split.
        let loss = if i % 7 == 0 {
            f64::INFINITY
        } else {
            (p[0] * 10.0).round() + p[6]
        };
        history.push((p, loss));
    }
}

#[test]
fn the_same_seed_gives_the_same_suggestions() {
    let space = every_kind();
    let run = |seed| {
        let mut r = rng(seed);
        let mut history = Vec::new();
        for _ in 0..30 {
            let p = Tpe {
                multivariate: seed % 2 == 0,
                ..Tpe::default()
            }
            .suggest(&space, &history, &mut r);
            let loss = p.iter().sum::<f64>();
            history.push((p, loss));
        }
        history
    };
    assert_eq!(run(11), run(11));
    assert_eq!(run(12), run(12));
    assert_ne!(run(11), run(13));
    assert_ne!(run(12), run(14));
}

#[test]
fn degenerate_histories_give_points_of_the_space() {
    let space = every_kind();
    let tpe = Tpe {
        n_startup: 0,
        ..Tpe::default()
    };
    let p = random_point(&space, &mut rng(1));
    let cases: Vec<Vec<(Vec<f64>, f64)>> = vec![
        vec![],
        vec![(p.clone(), 1.0)],
        vec![(p.clone(), 2.0); 30],
        vec![(p.clone(), f64::INFINITY); 5],
        vec![(p.clone(), f64::NAN), (p.clone(), f64::NEG_INFINITY)],
        vec![(vec![1.0], 0.0), (vec![f64::NAN; p.len()], 0.0)],
    ];
    for history in cases {
        let q = tpe.suggest(&space, &history, &mut rng(2));
        assert!(space.contains(&q), "{q:?} from {history:?}");
    }
}

#[test]
fn all_failed_trials_steer_away_from_them() {
    // Only failures so far: l is the prior, g piles up near the failures, so suggestions move
    // off the failed corner.
    let space = Space::new(vec![cont(0.0, 1.0)]).unwrap();
    let history: Vec<_> = (0..20)
        .map(|i| (vec![0.01 * i as f64 / 20.0], f64::INFINITY))
        .collect();
    let mut r = rng(5);
    let mean = (0..50)
        .map(|_| Tpe::default().suggest(&space, &history, &mut r)[0])
        .sum::<f64>()
        / 50.0;
    assert!(mean > 0.5, "mean suggestion {mean}");
}

#[test]
fn invalid_dimensions_are_errors() {
    let bad = [
        cont(1.0, 0.0),
        cont(f64::NAN, 1.0),
        cont(-f64::MAX, f64::MAX),
        Dim::Continuous {
            low: 0.0,
            high: 1.0,
            log: true,
            q: None,
        },
        Dim::Continuous {
            low: 0.0,
            high: 1.0,
            log: false,
            q: Some(0.0),
        },
        Dim::Integer {
            low: 0,
            high: 5,
            log: true,
        },
        Dim::Integer {
            low: 5,
            high: 4,
            log: false,
        },
        Dim::Categorical {
            n: 0,
            weights: None,
        },
        Dim::Categorical {
            n: 2,
            weights: Some(vec![0.0, 0.0]),
        },
        Dim::Categorical {
            n: 2,
            weights: Some(vec![1.0]),
        },
    ];
    for dim in bad {
        let err = Space::new(vec![cont(0.0, 1.0), dim.clone()]).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.starts_with("search dimension 1:")),
            "{dim:?}: {err}"
        );
    }
}

#[test]
fn gauss_mass_is_accurate_in_both_tails() {
    // scipy 1.17.1 `log_ndtr(-10)`, `log_ndtr(-30)`, `log(ndtr(1) - ndtr(-1))`; the erfc fit
    // is good to 1.2e-7 relative, so 2e-7 relative (absolute below 1).
    let cases = [
        (f64::NEG_INFINITY, 0.0, 0.5f64.ln()),
        (-1.0, 1.0, -0.381_715_146_302_126_16),
        (f64::NEG_INFINITY, -10.0, -53.231_285_150_512_48),
        (f64::NEG_INFINITY, -30.0, -454.321_243_956_343_27),
    ];
    for (lo, hi, want) in cases {
        let got = ln_gauss_mass(lo, hi);
        assert!(
            (got - want).abs() <= 2e-7 * want.abs().max(1.0),
            "{lo} {hi}: {got} vs {want}"
        );
        // Mirror symmetry: the upper tail agrees with the lower one.
        assert_eq!(ln_gauss_mass(-hi, -lo), got);
    }
    assert_eq!(ln_gauss_mass(1.0, 1.0), f64::NEG_INFINITY);
    assert!(ln_gauss_mass(-40.0, -40.0 + 1e-12).is_finite());
}

fn dim_strategy() -> impl Strategy<Value = Dim> {
    prop_oneof![
        (
            -1e3..1e3f64,
            0.0..1e3f64,
            any::<bool>(),
            prop::option::of(1e-3..10f64)
        )
            .prop_map(|(low, width, log, q)| {
                let low = if log { low.abs() + 1e-6 } else { low };
                Dim::Continuous {
                    low,
                    high: low + width,
                    log,
                    q,
                }
            }),
        (-50i64..50, 0i64..200, any::<bool>()).prop_map(|(low, width, log)| {
            let low = if log { low.abs() + 1 } else { low };
            Dim::Integer {
                low,
                high: low + width,
                log,
            }
        }),
        (1usize..6, any::<bool>()).prop_map(|(n, weighted)| Dim::Categorical {
            n,
            weights: weighted.then(|| (0..n).map(|i| (i % 3) as f64 + 0.5).collect()),
        }),
    ]
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -2e3..2e3f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1e300),
        1 => (0u8..6).prop_map(f64::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_histories_never_panic(
        dims in prop::collection::vec(dim_strategy(), 1..5),
        points in prop::collection::vec(
            (prop::collection::vec(value_strategy(), 0..6), value_strategy()), 0..40),
        gamma in prop_oneof![Just(f64::NAN), -1.0..2.0f64],
        n_startup in 0usize..12,
        n_candidates in 0usize..30,
        prior_weight in prop_oneof![Just(f64::NAN), Just(0.0), -1.0..3.0f64],
        multivariate in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let space = Space::new(dims).unwrap();
        // Lengths that match the space, mostly, so the estimator sees real data.
        let history: Vec<(Vec<f64>, f64)> = points
            .into_iter()
            .map(|(mut p, loss)| {
                if p.len() != space.len() && seed % 4 != 0 {
                    p.resize(space.len(), 0.5);
                }
                (p, loss)
            })
            .collect();
        let tpe = Tpe { gamma, n_startup, n_candidates, prior_weight, multivariate };
        let p = tpe.suggest(&space, &history, &mut rng(seed));
        prop_assert!(space.contains(&p), "{:?}", p);
    }
}

#[test]
fn a_log_grid_cut_at_low_still_converges_to_low() {
    // Grid 0.1, 0.6, 1.1, 1.6 on a log scale; 0.1 − 0.25 < 0, so its cell starts at `low`.
    let space = Space::new(vec![Dim::Continuous {
        low: 0.1,
        high: 2.0,
        log: true,
        q: Some(0.5),
    }])
    .unwrap();
    let mut r = rng(9);
    let mut history = Vec::new();
    for _ in 0..40 {
        let p = Tpe::default().suggest(&space, &history, &mut r);
        let loss = p[0];
        history.push((p, loss));
    }
    let lows = history[20..].iter().filter(|h| h.0[0] == 0.1).count();
    assert!(lows >= 12, "0.1 suggested {lows} times out of the last 20");
}
