//! Source signals: AR(2) rhythm resonators, 1/f background noise, and the envelope shapes that
//! modulate them.

use std::f64::consts::PI;

/// Smooth 0 → 1 step between `a` and `b`.
pub(super) fn smoothstep(t: f64, a: f64, b: f64) -> f64 {
    if t <= a {
        0.0
    } else if t >= b {
        1.0
    } else {
        0.5 - 0.5 * (PI * (t - a) / (b - a)).cos()
    }
}

/// Hann bump over `a..b`, 1 in the middle.
pub(super) fn bump(t: f64, a: f64, b: f64) -> f64 {
    if t <= a || t >= b {
        0.0
    } else {
        0.5 - 0.5 * (2.0 * PI * (t - a) / (b - a)).cos()
    }
}

/// Narrow-band oscillation: an AR(2) resonator driven by white noise, unit variance.
pub(super) struct Resonator {
    pub(super) a1: f64,
    pub(super) a2: f64,
    pub(super) drive: f64,
    pub(super) y1: f64,
    pub(super) y2: f64,
}

impl Resonator {
    pub(super) fn new(hz: f64, bandwidth_hz: f64, rate: f64) -> Resonator {
        let r = (-PI * bandwidth_hz / rate).exp();
        let a1 = 2.0 * r * (2.0 * PI * hz / rate).cos();
        let a2 = -r * r;
        // Stationary variance of an AR(2) process driven by unit white noise.
        let var = (1.0 - a2) / ((1.0 + a2) * ((1.0 - a2).powi(2) - a1 * a1));
        Resonator {
            a1,
            a2,
            drive: 1.0 / var.sqrt(),
            y1: 0.0,
            y2: 0.0,
        }
    }

    pub(super) fn step(&mut self, w: f64) -> f64 {
        let y = self.a1 * self.y1 + self.a2 * self.y2 + self.drive * w;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// 1/f noise: Paul Kellet's three-pole filter of white noise, then a 0.5 Hz high-pass like
/// the amplifier's, scaled to unit variance.
#[derive(Clone)]
pub(super) struct Pink {
    pub(super) b: [f64; 3],
    pub(super) hp_a: f64,
    pub(super) hp_x: f64,
    pub(super) hp_y: f64,
    pub(super) drive: f64,
}

impl Pink {
    pub(super) fn new(rate: f64) -> Pink {
        let mut p = Pink {
            b: [0.0; 3],
            hp_a: (-2.0 * PI * 0.5 / rate).exp(),
            hp_x: 0.0,
            hp_y: 0.0,
            drive: 1.0,
        };
        // Unit variance: the energy of the impulse response is the output variance.
        let mut probe = p.clone();
        let mut energy = probe.step(1.0).powi(2);
        for _ in 0..(200.0 * rate) as usize {
            energy += probe.step(0.0).powi(2);
        }
        p.drive = 1.0 / energy.sqrt();
        p
    }

    pub(super) fn step(&mut self, w: f64) -> f64 {
        let w = w * self.drive;
        self.b[0] = 0.99765 * self.b[0] + w * 0.099_046;
        self.b[1] = 0.963 * self.b[1] + w * 0.296_516_4;
        self.b[2] = 0.57 * self.b[2] + w * 1.052_691_3;
        let x = self.b[0] + self.b[1] + self.b[2] + w * 0.1848;
        self.hp_y = self.hp_a * (self.hp_y + x - self.hp_x);
        self.hp_x = x;
        self.hp_y
    }
}

pub(super) enum Oscillator {
    Rhythm(Resonator),
    Background(Pink),
}

/// A source signal: an oscillator, its amplitude (µV) and an optional amplitude envelope.
pub(super) struct Generator {
    pub(super) osc: Oscillator,
    pub(super) amp: f64,
    pub(super) envelope: Option<Vec<f32>>,
}
