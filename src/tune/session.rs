//! A sweep from start to finish: load the dataset, pick trials (grid, random or TPE), evaluate
//! them in batches with shared work, stop hopeless ones early, journal every result, and keep
//! the outputs up to date after every batch.
//!
//! Trials run in batches of a fixed size, whatever the number of threads: what a batch runs,
//! and which of its trials hyperband stops, depends only on the batches before it, so a sweep is
//! deterministic for a seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::cv::Evaluation;
use crate::model::evaluate::Trials;
use crate::model::family::Params;
use crate::preprocess::{self, PreprocessConfig, SourceFile};
use crate::signal::epochs::EpochSpec;
use crate::tune::journal::{Header, Journal, Record, Status};
use crate::tune::outputs::{self, Best, SweepInfo};
use crate::tune::runner::{Prepared, TrialResult};
use crate::tune::search::{self, Assignment, BayesSpace};
use crate::tune::space::{self, Candidate, PrepOverrides};
use crate::tune::sweep::{self, Goal, Method, Sweep};

/// Grid and random sweeps run this many trials per batch.
pub const BATCH: usize = 32;
/// Bayes sweeps ask TPE for this many suggestions at a time.
pub const BAYES_BATCH: usize = 4;

/// Everything a sweep needs besides its dataset and output directory.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    pub sweep: Sweep,
    /// sha256 of the sweep file's bytes (a journal belongs to one file).
    pub sweep_sha256: String,
    pub evaluation: Evaluation,
    pub seed: u64,
    pub jobs: usize,
    pub max_trials: Option<usize>,
    /// `(i, n)`: run only shard `i` of `n` (1-based).
    pub shard: Option<(usize, usize)>,
    /// Discard an existing journal instead of resuming it.
    pub restart: bool,
    /// Parameters the sweep does not vary (defaults, or a `--params` file).
    pub base: Params,
}

/// What a sweep reports as it goes.
pub enum Event<'a> {
    /// About to run `planned` trials; `resumed` finished ones were found in the journal.
    Start { planned: usize, resumed: usize },
    /// Preprocessing the recordings again for a sweep value of the band, order or window.
    Preprocessing { overrides: &'a PrepOverrides },
    /// A trial finished; `best` is the best complete metric so far.
    Trial {
        record: &'a Record,
        best: Option<f64>,
    },
}

/// The sweep's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub info: SweepInfo,
    /// Every trial of this sweep (this shard), finished or resumed, by index.
    pub records: Vec<Record>,
    pub best: Option<Best>,
    /// Trials run now, and trials taken from the journal.
    pub ran: usize,
    pub resumed: usize,
    /// The metric reached the sweep's `metric.target`, so the sweep stopped there.
    pub reached_target: bool,
}

/// The metric a sweep optimises: the file's, or accuracy (maximised) when it names none.
pub fn metric_of(sweep: &Sweep) -> Result<(String, Goal)> {
    match &sweep.metric {
        None => Ok(("accuracy".to_owned(), Goal::Maximize)),
        Some(m) if m.name == "accuracy" || m.name == "kappa" => Ok((m.name.clone(), m.goal)),
        Some(m) => Err(Error::Invalid(format!(
            "metric `{}` does not exist; tune reports `accuracy` and `kappa`",
            m.name
        ))),
    }
}

/// One preprocessing of the data, with the work its trials share.
struct Variant {
    prepared: Prepared,
}

/// Runs (or resumes) a sweep on the dataset in `data`, writing into `out`.
pub fn run(
    data: &Path,
    config: &TuneConfig,
    out: &Path,
    on_event: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Outcome> {
    let sweep = &config.sweep;
    let (metric, goal) = metric_of(sweep)?;
    space::check_names(sweep)?;
    space::check_values(sweep, &config.base)?;
    if let Some((i, n)) = config.shard {
        if n == 0 || i == 0 || i > n {
            return Err(Error::Invalid(format!(
                "shard `{i}/{n}` is not `I/N` with 1 <= I <= N"
            )));
        }
    }
    let budget = search::budget(sweep, config.max_trials)?;
    let dataset = Dataset::load(data)?;
    check_classes(data, &dataset)?;

    let header = Header::new(
        config.sweep_sha256.clone(),
        dataset.sha256.clone(),
        config.evaluation.to_string(),
        config.seed,
        config.shard,
    );
    let (journal, old) = Journal::open(out, &header, config.restart)?;
    let info = SweepInfo {
        name: sweep.name.clone(),
        method: match sweep.method {
            Method::Grid => "grid",
            Method::Random => "random",
            Method::Bayes => "bayes",
        }
        .to_owned(),
        metric: metric.clone(),
        goal: match goal {
            Goal::Maximize => "maximize",
            Goal::Minimize => "minimize",
        }
        .to_owned(),
        evaluation: config.evaluation.to_string(),
        seed: config.seed,
        dataset_sha256: dataset.sha256.clone(),
        parameters: sweep.parameters.keys().cloned().collect(),
        shard: config.shard,
    };

    // Finished trials are kept; failed ones run again.
    let mut done: BTreeMap<String, Record> = old
        .into_iter()
        .filter(|r| r.status != Status::Failed)
        .map(|r| (r.id.clone(), r))
        .collect();
    let resumed = done.len();

    let mut state = State {
        config,
        metric: &metric,
        goal,
        data,
        out,
        base: dataset,
        variants: HashMap::new(),
        journal: Mutex::new(journal),
        records: done.values().cloned().collect(),
        ran: 0,
    };

    let shard_of = |index: usize| match config.shard {
        Some((i, n)) => index % n == i - 1,
        None => true,
    };
    let mut reached_target = false;
    match sweep.method {
        Method::Grid | Method::Random => {
            // The whole plan is known up front: the grid (in its order) or the draws.
            let plan: Vec<(usize, Assignment)> = match sweep.method {
                Method::Grid => sweep.grid().into_iter().take(budget).enumerate().collect(),
                _ => (0..budget)
                    .map(|i| (i, search::random_draw(sweep, config.seed, i as u64)))
                    .collect(),
            };
            let mut seen = HashSet::new();
            let mine: Vec<(usize, Assignment)> = plan
                .into_iter()
                .filter(|(i, _)| shard_of(*i))
                // A random draw that repeats an earlier one adds nothing.
                .filter(|(_, a)| seen.insert(sweep::trial_id(a)))
                .collect();
            let pending: Vec<(usize, Assignment)> = mine
                .iter()
                .filter(|(_, a)| !done.contains_key(&sweep::trial_id(a)))
                .cloned()
                .collect();
            on_event(Event::Start {
                planned: mine.len(),
                resumed: mine.len() - pending.len(),
            });
            for batch in pending.chunks(BATCH) {
                let records = state.run_batch(batch, on_event)?;
                for r in records {
                    done.insert(r.id.clone(), r);
                }
                outputs::write_all(out, &info, &state.records)?;
                if state.reached_target() {
                    reached_target = true;
                    break;
                }
            }
        }
        Method::Bayes => {
            let space = BayesSpace::new(sweep)?;
            let (shard_budget, seed) = match config.shard {
                // Each shard runs its own TPE with its own seed over its share of the budget.
                Some((i, n)) => (
                    budget / n + usize::from(i - 1 < budget % n),
                    config.seed.wrapping_add(i as u64),
                ),
                None => (budget, config.seed),
            };
            let mut count = state.records.len().min(shard_budget);
            on_event(Event::Start {
                planned: shard_budget,
                resumed: count,
            });
            let mut b = (count / BAYES_BATCH) as u64;
            while count < shard_budget {
                let size = BAYES_BATCH.min(shard_budget - count);
                // In sweep order, not completion order: TPE must see the same history
                // whatever the threads did.
                let mut sorted: Vec<&Record> = state.records.iter().collect();
                sorted.sort_by_key(|r| r.index);
                let history: Vec<(Assignment, f64)> = sorted
                    .iter()
                    .map(|r| (r.values.clone(), search::loss(r.metric(&metric), goal)))
                    .collect();
                let mut batch: Vec<(usize, Assignment)> = Vec::new();
                for a in space.suggest(seed, b, size, &history) {
                    let id = sweep::trial_id(&a);
                    if !done.contains_key(&id)
                        && !batch.iter().any(|(_, x)| sweep::trial_id(x) == id)
                    {
                        batch.push((count + batch.len(), a));
                    }
                }
                count += size;
                b += 1;
                let records = state.run_batch(&batch, on_event)?;
                for r in records {
                    done.insert(r.id.clone(), r);
                }
                outputs::write_all(out, &info, &state.records)?;
                if state.reached_target() {
                    reached_target = true;
                    break;
                }
            }
        }
    }
    let mut records = state.records;
    records.sort_by_key(|r| r.index);
    let best = outputs::write_all(out, &info, &records)?;
    Ok(Outcome {
        info,
        records,
        best,
        ran: state.ran,
        resumed,
        reached_target,
    })
}

/// A dataset a sweep can learn from has at least two classes with trials.
fn check_classes(path: &Path, dataset: &Dataset) -> Result<()> {
    let mut present: Vec<i64> = dataset.y.iter().copied().collect();
    present.sort_unstable();
    present.dedup();
    if present.len() < 2 {
        let names: Vec<&str> = present
            .iter()
            .filter_map(|&c| dataset.meta.classes.get(c as usize).map(String::as_str))
            .collect();
        return Err(Error::Data(format!(
            "`{}` has trials of one class only (`{}`); a sweep needs at least two",
            path.display(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Where finished trials go while a batch runs: the caller's callback, the records, the best
/// metric so far.
type Sink<'e, 'f> = (
    &'e mut (dyn FnMut(Event<'_>) + Send + 'f),
    Vec<Record>,
    Option<f64>,
);

struct State<'a> {
    config: &'a TuneConfig,
    metric: &'a str,
    goal: Goal,
    data: &'a Path,
    out: &'a Path,
    base: Dataset,
    variants: HashMap<String, Variant>,
    journal: Mutex<Journal>,
    /// Every record of this sweep so far (resumed and new).
    records: Vec<Record>,
    ran: usize,
}

impl State<'_> {
    fn reached_target(&self) -> bool {
        let Some(target) = self.config.sweep.metric.as_ref().and_then(|m| m.target) else {
            return false;
        };
        outputs::best(&self.records, self.metric, self.goal)
            .and_then(|r| r.metric(self.metric))
            .is_some_and(|v| v == target || outputs::better(v, target, self.goal))
    }

    /// Runs one batch: resolves each assignment, groups by preprocessing, evaluates, journals.
    fn run_batch(
        &mut self,
        batch: &[(usize, Assignment)],
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<Vec<Record>> {
        let mut finished: Vec<Record> = Vec::new();
        let mut groups: BTreeMap<String, Vec<(usize, Candidate)>> = BTreeMap::new();
        for (index, a) in batch {
            match space::candidate(a, &self.config.base) {
                Ok(mut c) => {
                    // A value equal to the dataset's own needs no preprocessing.
                    c.prep = c.prep.relative_to(&self.base.meta);
                    groups.entry(c.prep.key()).or_default().push((*index, c))
                }
                Err(reason) => {
                    let r = failed(*index, a, None, PrepOverrides::default(), reason);
                    self.record(&r, on_event)?;
                    finished.push(r);
                }
            }
        }
        // Hyperband compares a trial at each rung with what earlier batches had there.
        let rungs = self
            .config
            .sweep
            .early_terminate
            .as_ref()
            .map(|et| (search::rungs(et, self.n_folds()), et.eta))
            .unwrap_or_default();
        let peers: BTreeMap<usize, Vec<f64>> = rungs
            .0
            .iter()
            .map(|&r| {
                let at: Vec<f64> = self
                    .records
                    .iter()
                    .filter(|x| x.status != Status::Failed)
                    .filter_map(|x| running_mean(x.folds(self.metric), r))
                    .collect();
                (r, at)
            })
            .collect();
        for (key, members) in groups {
            let prep = members[0].1.prep.clone();
            if let Err(e) = self.variant(&key, &prep, on_event) {
                // The preprocessing itself cannot be done: every trial that needs it fails.
                if matches!(e, Error::Io { .. }) {
                    return Err(e);
                }
                for (index, c) in members {
                    let r = failed(index, &c.values, Some(c.model), c.prep, e.to_string());
                    self.record(&r, on_event)?;
                    finished.push(r);
                }
                continue;
            }
            let models: Vec<Params> = members.iter().map(|(_, c)| c.model.clone()).collect();
            let metric = self.metric;
            let goal = self.goal;
            let prune = |_: usize, acc: &[f64], kap: &[f64]| {
                let folds = if metric == "kappa" { kap } else { acc };
                match peers.get(&folds.len()) {
                    Some(at) => {
                        let mean = folds.iter().sum::<f64>() / folds.len() as f64;
                        !search::keep_going(mean, at, rungs.1, goal)
                    }
                    None => false,
                }
            };
            let variant = &self.variants[&key];
            let journal = &self.journal;
            let sink: Mutex<Sink<'_, '_>> = Mutex::new((
                on_event,
                Vec::new(),
                outputs::best(&self.records, metric, goal).and_then(|r| r.metric(metric)),
            ));
            let io_error: Mutex<Option<Error>> = Mutex::new(None);
            variant.prepared.evaluate(
                &models,
                self.config.jobs,
                &prune,
                &|i, result: &TrialResult| {
                    let (index, c) = &members[i];
                    let r = record_of(*index, c, result);
                    if let Err(e) = journal.lock().unwrap_or_else(|e| e.into_inner()).append(&r) {
                        io_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                    let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
                    if r.status == Status::Ok {
                        if let Some(v) = r.metric(metric) {
                            if sink.2.is_none_or(|b| outputs::better(v, b, goal)) {
                                sink.2 = Some(v);
                            }
                        }
                    }
                    let best = sink.2;
                    (sink.0)(Event::Trial { record: &r, best });
                    sink.1.push(r);
                },
            )?;
            if let Some(e) = io_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return Err(e);
            }
            let (_, records, _) = sink.into_inner().unwrap_or_else(|e| e.into_inner());
            self.ran += records.len();
            self.records.extend(records.iter().cloned());
            finished.extend(records);
        }
        Ok(finished)
    }

    fn n_folds(&self) -> usize {
        self.variants
            .values()
            .next()
            .map_or(5, |v| v.prepared.n_folds())
    }

    fn record(&mut self, r: &Record, on_event: &mut (dyn FnMut(Event<'_>) + Send)) -> Result<()> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(r)?;
        self.records.push(r.clone());
        self.ran += 1;
        let best = outputs::best(&self.records, self.metric, self.goal)
            .and_then(|b| b.metric(self.metric));
        on_event(Event::Trial { record: r, best });
        Ok(())
    }

    /// The prepared data for one preprocessing, made (and cached on disk) on first use.
    fn variant(
        &mut self,
        key: &str,
        prep: &PrepOverrides,
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<()> {
        if self.variants.contains_key(key) {
            return Ok(());
        }
        let prepared = if prep.is_empty() {
            prepare(&self.base, self.config)?
        } else {
            on_event(Event::Preprocessing { overrides: prep });
            let dataset = preprocess_variant(self.data, &self.base, prep, self.out)?;
            check_classes(self.data, &dataset)?;
            prepare(&dataset, self.config)?
        };
        self.variants.insert(key.to_owned(), Variant { prepared });
        Ok(())
    }
}

fn prepare(dataset: &Dataset, config: &TuneConfig) -> Result<Prepared> {
    if let Some(i) = dataset.x.iter().position(|v| !v.is_finite()) {
        let per_trial = dataset.x.len() / dataset.x.dim().0.max(1);
        return Err(Error::Data(format!(
            "trial {} holds a non-finite value",
            i / per_trial.max(1)
        )));
    }
    let y: Vec<usize> = dataset.y.iter().map(|&c| c as usize).collect();
    let subjects: Vec<u32> = dataset.trials.iter().map(|t| t.subject).collect();
    let sessions: Vec<String> = dataset.trials.iter().map(|t| t.session.clone()).collect();
    Prepared::new(
        dataset.x.view(),
        Trials {
            y: &y,
            n_classes: dataset.meta.classes.len(),
            subjects: &subjects,
            sessions: &sessions,
        },
        dataset.meta.rate,
        config.evaluation,
        config.seed,
    )
}

/// Preprocesses the dataset's own source recordings again with `prep` changed, into
/// `out/cache/` (reused by later runs and resumes).
fn preprocess_variant(
    data: &Path,
    base: &Dataset,
    prep: &PrepOverrides,
    out: &Path,
) -> Result<Dataset> {
    let meta = &base.meta;
    let digest = crate::fsutil::sha256_hex(format!("{}\n{}", base.sha256, prep.key()).as_bytes());
    let dir = out.join("cache").join(format!("prep-{}", &digest[..16]));
    if let Ok(d) = Dataset::load(&dir) {
        return Ok(d);
    }
    let resolve = |p: &str| -> Result<PathBuf> {
        let given = PathBuf::from(p);
        let beside = data.parent().map(|d| d.join(p));
        [Some(given.clone()), beside]
            .into_iter()
            .flatten()
            .find(|c| c.is_file())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "sweeping preprocessing parameters needs the recordings the dataset was made from; `{}` (in {}/meta.json) is missing",
                    given.display(),
                    data.display()
                ))
            })
    };
    let mut sources = Vec::with_capacity(meta.sources.len());
    for s in &meta.sources {
        sources.push(SourceFile {
            path: resolve(&s.path)?,
            name: s.path.clone(),
            subject: s.subject,
            session: s.session.clone(),
            labels: s.labels.as_ref().map(|l| resolve(&l.path)).transpose()?,
            labels_name: s.labels.as_ref().map(|l| l.path.clone()),
        });
    }
    let band = (
        prep.l_freq.unwrap_or(meta.filter.band[0]),
        prep.h_freq.unwrap_or(meta.filter.band[1]),
    );
    let config = PreprocessConfig {
        subjects: None,
        sessions: None,
        band,
        order: prep.filter_order.unwrap_or(meta.filter.order),
        mode: meta.filter.mode,
        epochs: EpochSpec {
            events: meta.events.clone(),
            classes: meta.classes.clone(),
            tmin: prep.tmin.unwrap_or(meta.window.tmin),
            tmax: prep.tmax.unwrap_or(meta.window.tmax),
            keep_rejected: meta.keep_rejected,
        },
        channels: Some(meta.channels.clone()),
        labels_dirs: Vec::new(),
        per_trial: meta.filter.per_trial,
        force: false,
    };
    preprocess::run(&sources, &config, &dir, &mut |_, _| {})?;
    Dataset::load(&dir)
}

fn running_mean(folds: &[f64], r: usize) -> Option<f64> {
    (folds.len() >= r && r > 0).then(|| folds[..r].iter().sum::<f64>() / r as f64)
}

fn failed(
    index: usize,
    values: &BTreeMap<String, Value>,
    params: Option<Params>,
    preprocess: PrepOverrides,
    reason: String,
) -> Record {
    Record {
        id: sweep::trial_id(values),
        index,
        status: Status::Failed,
        values: values.clone(),
        params,
        preprocess,
        accuracy: None,
        kappa: None,
        fold_accuracy: Vec::new(),
        fold_kappa: Vec::new(),
        seconds: 0.0,
        error: Some(reason),
    }
}

fn record_of(index: usize, c: &Candidate, t: &TrialResult) -> Record {
    Record {
        id: sweep::trial_id(&c.values),
        index,
        status: match (&t.error, t.pruned) {
            (Some(_), _) => Status::Failed,
            (None, true) => Status::Pruned,
            (None, false) => Status::Ok,
        },
        values: c.values.clone(),
        params: Some(c.model.clone()),
        preprocess: c.prep.clone(),
        accuracy: t.accuracy,
        kappa: t.kappa,
        fold_accuracy: t.fold_accuracy.clone(),
        fold_kappa: t.fold_kappa.clone(),
        seconds: t.seconds,
        error: t.error.clone(),
    }
}
