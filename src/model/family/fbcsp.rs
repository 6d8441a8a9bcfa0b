//! `fbcsp+svm` and `fbcsp+lda`: filter-bank CSP as in Ang et al. 2008, MOABB's FBCSP pipeline —
//! a bank of Butterworth band-passes (default 4–40 Hz in 4 Hz bands, each trial filtered
//! alone, zero-phase), CSP in every band, the `k_best` features of highest mutual information
//! with the class (scikit-learn `SelectKBest(mutual_info_classif)`), then the head: a linear
//! SVM (MOABB's) or shrinkage LDA.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{concatenate, Array2, Array3, Axis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{csp_params, Chain, CspPart, Features, LdaPart, SvmPart};
use super::csp_linear::LDA_SHRINKAGE;
use super::csp_svm::{CSP_PARAMS, PROBABILITY, SVM_PARAMS};
use super::riemannian::normalize_as;
use super::{DataShape, Family, Fitted, Kind, ParamSpec, Params, ReportParts, Trials3};
use crate::error::{Error, Result};
use crate::model::csp::Csp;
use crate::model::lda::Lda;
use crate::model::mutual_info::{mutual_info_classif, select_k_best};
use crate::model::svm::SvmModel;
use crate::signal::filter::{self, BandPass, FilterMode};
use crate::with_trials;

/// The filter bank's parameters.
pub const BANK_PARAMS: [ParamSpec; 3] = [
    ParamSpec {
        name: "bands",
        kind: Kind::FloatList,
        default: "4,8,12,16,20,24,28,32,36,40",
        help: "Filter-bank band edges in Hz, ascending: each neighbouring pair is a band \
               (default 4–40 Hz in 4 Hz bands)",
    },
    ParamSpec {
        name: "bank_order",
        kind: Kind::Int { min: 1, max: 20 },
        default: "4",
        help: "Butterworth order of every filter-bank band-pass",
    },
    ParamSpec {
        name: "k_best",
        kind: Kind::Int { min: 1, max: 4096 },
        default: "10",
        help: "Filter-bank CSP features kept, by mutual information with the class",
    },
];

#[derive(Serialize, Deserialize)]
struct BankPart {
    bands: Vec<f64>,
    bank_order: usize,
    k_best: usize,
}

/// The bands of `params`, each checked against the sampling rate; the error names `bands`.
fn bands_of(params: &Params, rate: f64) -> Result<(Vec<BandPass>, BankPart)> {
    let p: BankPart = params.typed()?;
    if p.bands.len() < 2 {
        return Err(Error::Invalid(format!(
            "`bands` = `{}` needs at least two edges",
            join(&p.bands)
        )));
    }
    let bank = p
        .bands
        .windows(2)
        .map(|w| {
            BandPass::new(w[0], w[1], p.bank_order, rate)
                .map_err(|e| Error::Invalid(format!("`bands` = `{}`: {e}", join(&p.bands))))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((bank, p))
}

fn join(v: &[f64]) -> String {
    v.iter().map(f64::to_string).collect::<Vec<_>>().join(",")
}

/// Every trial band-passed alone, zero-phase.
fn band_trials(x: Trials3<'_>, sos: &[[f64; 6]]) -> Result<Array3<f64>> {
    with_trials!(x, v => {
        let (n, c, s) = v.dim();
        let mut out = Array3::<f64>::zeros((n, c, s));
        for (t, mut o) in v.outer_iter().zip(out.outer_iter_mut()) {
            let mut trial = crate::model::csp::Sample::to_f64(t).into_owned();
            filter::filter_rows(sos, FilterMode::ZeroPhase, &mut trial)?;
            o.assign(&trial);
        }
        Ok(out)
    })
}

/// A fitted filter bank: one CSP per band and the selected features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilterBankCsp {
    /// Hz, one `[low, high]` per band.
    pub bands: Vec<[f64; 2]>,
    pub order: usize,
    pub rate: f64,
    pub csps: Vec<Csp>,
    /// Mutual information of every band's every feature with the class, band-major.
    pub mutual_info: Vec<f64>,
    /// Indices (band-major) of the features kept.
    pub selected: Vec<usize>,
}

impl FilterBankCsp {
    fn all_features(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        let mut parts = Vec::with_capacity(self.bands.len());
        for (band, csp) in self.bands.iter().zip(&self.csps) {
            let bp = BandPass::new(band[0], band[1], self.order, self.rate)?;
            let filtered = band_trials(x, &bp.sos())?;
            parts.push(csp.transform(filtered.view())?);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(1), &views).map_err(|e| Error::Internal(e.to_string()))
    }

    /// (band, component) of feature `i` of the bank.
    fn origin(&self, i: usize) -> (usize, usize) {
        let mut i = i;
        for (b, csp) in self.csps.iter().enumerate() {
            if i < csp.n_features() {
                return (b, i);
            }
            i -= csp.n_features();
        }
        (self.csps.len(), 0)
    }
}

impl Features for FilterBankCsp {
    const STAGE: &'static str = "filter_bank_csp";
    fn fit(
        x: Trials3<'_>,
        y: &[usize],
        _n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Self> {
        let (bank, p) = bands_of(params, data.rate)?;
        let cp = csp_params(params)?;
        cp.check(data.n_channels)?;
        let total = bank.len() * cp.n_components;
        if p.k_best > total {
            return Err(Error::Invalid(format!(
                "`k_best` = `{}` exceeds the {total} features of {} bands × {} CSP components",
                p.k_best,
                bank.len(),
                cp.n_components
            )));
        }
        let mut csps = Vec::with_capacity(bank.len());
        let mut parts = Vec::with_capacity(bank.len());
        for bp in &bank {
            let filtered = band_trials(x, &bp.sos())?;
            let csp = Csp::fit(filtered.view(), y, &cp)?;
            parts.push(csp.transform(filtered.view())?);
            csps.push(csp);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let all = concatenate(Axis(1), &views).map_err(|e| Error::Internal(e.to_string()))?;
        // scikit-learn's default: 3 neighbours.
        let mutual_info = mutual_info_classif(all.view(), y, 3)?;
        let selected = select_k_best(&mutual_info, p.k_best);
        Ok(FilterBankCsp {
            bands: bank.iter().map(|b| [b.low(), b.high()]).collect(),
            order: p.bank_order,
            rate: data.rate,
            csps,
            mutual_info,
            selected,
        })
    }
    fn transform(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        Ok(self.all_features(x)?.select(Axis(1), &self.selected))
    }
    fn n_channels(&self) -> usize {
        self.csps.first().map_or(0, Csp::n_channels)
    }
    fn n_features(&self) -> usize {
        self.selected.len()
    }
    fn report(&self, _params: &Params) -> ReportParts {
        let name = |&i: &usize| {
            let (b, c) = self.origin(i);
            let band = self.bands.get(b).copied().unwrap_or([0.0, 0.0]);
            format!("{}–{} Hz CSP {}", band[0], band[1], c + 1)
        };
        ReportParts {
            facts: vec![(
                "filter bank".into(),
                format!(
                    "{} bands ({}), Butterworth N={}; {} features kept by mutual information: {}",
                    self.bands.len(),
                    self.bands
                        .iter()
                        .map(|b| format!("{}–{}", b[0], b[1]))
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.order,
                    self.selected.len(),
                    self.selected
                        .iter()
                        .map(name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )],
            maps: self
                .selected
                .iter()
                .filter_map(|i| {
                    let (b, c) = self.origin(*i);
                    let row = self.csps.get(b)?.patterns().row(c).to_vec();
                    Some((name(i), row))
                })
                .collect(),
            maps_title: "Selected filter-bank CSP patterns".into(),
            maps_note: "The spatial pattern of every selected feature, titled by its band and \
                        component, nose up; red and blue are opposite signs, the scale is per map."
                .into(),
        }
    }
}

fn check_bank(params: &Params, data: DataShape) -> Result<()> {
    bands_of(params, data.rate)?;
    csp_params(params)?.check(data.n_channels)
}

pub struct FbcspSvm;

static FBCSP_SVM_PARAMS: [ParamSpec; 15] = [
    BANK_PARAMS[0],
    BANK_PARAMS[1],
    BANK_PARAMS[2],
    CSP_PARAMS[0],
    CSP_PARAMS[1],
    CSP_PARAMS[2],
    CSP_PARAMS[3],
    SVM_PARAMS[0],
    // MOABB's FBCSP+SVM uses a linear SVC.
    ParamSpec {
        default: "linear",
        ..SVM_PARAMS[1]
    },
    SVM_PARAMS[2],
    SVM_PARAMS[3],
    SVM_PARAMS[4],
    SVM_PARAMS[5],
    SVM_PARAMS[6],
    PROBABILITY,
];

impl Family for FbcspSvm {
    fn name(&self) -> &'static str {
        "fbcsp+svm"
    }
    fn stages(&self) -> &'static str {
        "filter bank → CSP per band → mutual-information selection → [standardise] → SVM"
    }
    fn scores_doc(&self) -> &'static str {
        "SVM decision values, as for csp+svm"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &FBCSP_SVM_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        let values = normalize_as::<BankPart>(self.name(), values)?;
        let values = normalize_as::<CspPart>(self.name(), values)?;
        normalize_as::<SvmPart>(self.name(), values)
    }
    fn check(&self, params: &Params, data: DataShape) -> Result<()> {
        check_bank(params, data)
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<FilterBankCsp, SvmModel>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<FilterBankCsp, SvmModel>::from_json(
            fitted,
        )?))
    }
}

pub struct FbcspLda;

static FBCSP_LDA_PARAMS: [ParamSpec; 9] = [
    BANK_PARAMS[0],
    BANK_PARAMS[1],
    BANK_PARAMS[2],
    CSP_PARAMS[0],
    CSP_PARAMS[1],
    CSP_PARAMS[2],
    CSP_PARAMS[3],
    SVM_PARAMS[0],
    LDA_SHRINKAGE,
];

impl Family for FbcspLda {
    fn name(&self) -> &'static str {
        "fbcsp+lda"
    }
    fn stages(&self) -> &'static str {
        "filter bank → CSP per band → mutual-information selection → [standardise] → LDA"
    }
    fn scores_doc(&self) -> &'static str {
        "LDA decision values, as for csp+lda"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &FBCSP_LDA_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        let values = normalize_as::<BankPart>(self.name(), values)?;
        let values = normalize_as::<CspPart>(self.name(), values)?;
        normalize_as::<LdaPart>(self.name(), values)
    }
    fn check(&self, params: &Params, data: DataShape) -> Result<()> {
        check_bank(params, data)
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<FilterBankCsp, Lda>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<FilterBankCsp, Lda>::from_json(fitted)?))
    }
}
