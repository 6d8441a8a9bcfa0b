//! Classification scores: accuracy, Cohen's kappa, per-class recall, confusion matrix.

use serde::{Deserialize, Serialize};

/// Scores of one set of predictions against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub n: usize,
    pub accuracy: f64,
    /// Cohen's kappa: agreement beyond chance, (p_o − p_e) / (1 − p_e); 0 when p_e is 1.
    pub kappa: f64,
    /// Recall of each class (NaN-free: a class with no true trials gets 0).
    pub recall: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Scores {
    /// Scores predictions of `n_classes` classes. Labels outside `0..n_classes` are a bug of the
    /// caller and panic (the library's own parts produce them).
    pub fn new(truth: &[usize], predicted: &[usize], n_classes: usize) -> Scores {
        assert_eq!(
            truth.len(),
            predicted.len(),
            "truth and predictions differ in length"
        );
        let mut confusion = vec![vec![0usize; n_classes]; n_classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        let n = truth.len();
        let correct: usize = (0..n_classes).map(|k| confusion[k][k]).sum();
        let accuracy = if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        };
        // Expected agreement by chance from the marginals (sklearn's cohen_kappa_score).
        let expected = if n == 0 {
            0.0
        } else {
            (0..n_classes)
                .map(|k| {
                    let row: usize = confusion[k].iter().sum();
                    let col: usize = confusion.iter().map(|r| r[k]).sum();
                    row as f64 * col as f64
                })
                .sum::<f64>()
                / (n as f64 * n as f64)
        };
        let kappa = if (1.0 - expected).abs() < f64::EPSILON {
            0.0
        } else {
            (accuracy - expected) / (1.0 - expected)
        };
        let recall = confusion
            .iter()
            .enumerate()
            .map(|(k, row)| {
                let total: usize = row.iter().sum();
                if total == 0 {
                    0.0
                } else {
                    row[k] as f64 / total as f64
                }
            })
            .collect();
        Scores {
            n,
            accuracy,
            kappa,
            recall,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn() {
        // sklearn 1.9.1: accuracy_score, cohen_kappa_score, recall_score(average=None),
        // confusion_matrix on y_true=[0,0,1,1,2,2,2,0], y_pred=[0,1,1,1,2,0,2,0]
        let t = [0, 0, 1, 1, 2, 2, 2, 0];
        let p = [0, 1, 1, 1, 2, 0, 2, 0];
        let s = Scores::new(&t, &p, 3);
        assert_eq!(
            s.confusion,
            vec![vec![2, 1, 0], vec![0, 2, 0], vec![1, 0, 2]]
        );
        assert!((s.accuracy - 0.75).abs() < 1e-15);
        // cohen_kappa_score(t, p) = 0.627906976744186
        assert!((s.kappa - 0.627906976744186).abs() < 1e-12, "{}", s.kappa);
        assert!((s.recall[0] - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(s.recall[1], 1.0);
    }

    #[test]
    fn degenerate_cases_do_not_divide_by_zero() {
        let s = Scores::new(&[0, 0], &[0, 0], 2);
        assert_eq!(s.accuracy, 1.0);
        assert_eq!(s.kappa, 0.0);
        assert_eq!(s.recall, vec![1.0, 0.0]);
        let empty = Scores::new(&[], &[], 2);
        assert_eq!(empty.accuracy, 0.0);
    }
}
