//! The model report looked at in a real browser: a report trained on synthetic data is rendered
//! by headless Chromium (`$BCIOPS_CHROMIUM`, set by scripts/services/60-chromium.sh) and the
//! screenshot is checked for the pictures, not only for the markup.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bciops;

/// Chromium named by `$BCIOPS_CHROMIUM`; skipped without it, except under `CI=true`.
fn chromium() -> Option<PathBuf> {
    match std::env::var_os("BCIOPS_CHROMIUM") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_CHROMIUM is not set under CI: run the tests through scripts/test.sh")
        }
        None => {
            eprintln!(
                "skipping: BCIOPS_CHROMIUM is not set (scripts/services/60-chromium.sh sets it)"
            );
            None
        }
    }
}

/// An RGB screenshot of `page` at `width` × `height` CSS pixels.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Shot {
    fn take(chromium: &Path, page: &Path, width: usize, height: usize) -> Shot {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("shot.png");
        // The closed network makes Chromium's background services hang or retry, hence the
        // flags that switch them off; a fresh profile per run keeps runs independent.
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run BCIOPS_CHROMIUM");
        assert!(
            png.is_file(),
            "no screenshot; chromium said:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        assert!(channels >= 3, "{:?}", info.color_type);
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        Shot {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The share of pixels in the rectangle for which `pred` holds.
    fn share(
        &self,
        x0: f64,
        y0: f64,
        w: f64,
        h: f64,
        pred: impl Fn(usize, usize, [u8; 3]) -> bool,
    ) -> f64 {
        let (mut hit, mut all) = (0usize, 0usize);
        let x1 = ((x0 + w) as usize).min(self.width);
        let y1 = ((y0 + h) as usize).min(self.height);
        for y in y0 as usize..y1 {
            for x in x0 as usize..x1 {
                all += 1;
                hit += usize::from(pred(x, y, self.px(x, y)));
            }
        }
        hit as f64 / all.max(1) as f64
    }
}

fn not_white(p: [u8; 3]) -> bool {
    p.iter().any(|&c| c < 250)
}

/// The value of the attribute `name="…"` in the element text `tag`.
fn attr(tag: &str, name: &str) -> f64 {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn chromium_shows_every_figure_of_a_trained_report() {
    let Some(chromium) = chromium() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let epochs = common::synth_epochs(
        tmp.path(),
        "epochs",
        &["--trials-per-class", "24", "--runs", "2"],
        &[],
    );
    let model = tmp.path().join("model");
    bciops([
        "train",
        "--data",
        epochs.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--eval",
        "cv:4",
    ])
    .success();
    let report = model.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();

    // The whole page: drawn, and not a wall of colour either.
    let page = Shot::take(&chromium, &report, 1150, 2400);
    let ink = page.share(0.0, 0.0, 1150.0, 2400.0, |_, _, p| not_white(p));
    assert!(
        (0.04..0.6).contains(&ink),
        "share of non-white pixels {ink}"
    );

    // Every figure alone at a known place: the report's own SVG elements, one per band of
    // BAND pixels, so that each can be checked where it is.
    const BAND: usize = 450;
    let svgs: Vec<&str> = html
        .match_indices("<svg")
        .map(|(i, _)| &html[i..i + html[i..].find("</svg>").unwrap() + 6])
        .collect();
    let labels: Vec<String> = svgs
        .iter()
        .map(|s| {
            let at = s.find("aria-label=\"").unwrap() + 12;
            s[at..].split('"').next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        labels,
        [
            "confusion matrix",
            "accuracy per fold",
            "topographic maps",
            "power spectra"
        ],
        "one subject: no per-subject bars"
    );
    let mut figures = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><style>body{margin:0;background:#fff}\
         div{position:absolute;left:0}</style></head><body>",
    );
    for (k, svg) in svgs.iter().enumerate() {
        figures.push_str(&format!("<div style=\"top:{}px\">{svg}</div>", k * BAND));
    }
    figures.push_str("</body></html>");
    let figures_page = tmp.path().join("figures.html");
    std::fs::write(&figures_page, figures).unwrap();
    let shot = Shot::take(&chromium, &figures_page, 1300, BAND * svgs.len());
    for (k, (svg, label)) in svgs.iter().zip(&labels).enumerate() {
        let width = attr(&svg[..svg.find('>').unwrap()], "width");
        let height = attr(&svg[..svg.find('>').unwrap()], "height");
        let top = (k * BAND) as f64;
        let drawn = shot.share(0.0, top, width, height, |_, _, p| not_white(p));
        assert!(drawn > 0.03, "{label}: only {drawn} of its box is drawn");
        assert_eq!(
            shot.share(
                0.0,
                top + height + 2.0,
                1300.0,
                BAND as f64 - height - 4.0,
                |_, _, p| { not_white(p) }
            ),
            0.0,
            "{label}: nothing is drawn outside its box"
        );
    }

    // The topomaps: inside every head circle the interpolated raster fills the disk (not only
    // the outline and electrode dots), and it is in colour: the embedded PNG was decoded.
    let maps = svgs[2];
    let top = (2 * BAND) as f64;
    let images: Vec<&str> = maps
        .match_indices("<image ")
        .map(|(i, _)| &maps[i..i + maps[i..].find("/>").unwrap()])
        .collect();
    assert_eq!(images.len(), 4, "one raster per CSP component");
    for image in images {
        let (x, y) = (attr(image, "x"), attr(image, "y") + top);
        let (w, h) = (attr(image, "width"), attr(image, "height"));
        let (cx, cy, r) = (x + w / 2.0, y + h / 2.0, w / 2.0 * 0.9);
        let inside = |px: usize, py: usize| {
            (px as f64 + 0.5 - cx).powi(2) + (py as f64 + 0.5 - cy).powi(2) < r * r
        };
        // RdBu's centre is #f7f7f7, so even a zero region differs from the white page.
        let filled = shot.share(x, y, w, h, |px, py, p| inside(px, py) && p != [255; 3])
            / (std::f64::consts::PI / 4.0 * 0.81);
        assert!(
            filled > 0.97,
            "map at ({x}, {y}): {filled} of the disk drawn"
        );
        let coloured = shot.share(x, y, w, h, |px, py, p| {
            inside(px, py) && p.iter().max().unwrap() - p.iter().min().unwrap() > 40
        });
        assert!(coloured > 0.02, "map at ({x}, {y}): {coloured} in colour");
    }
}
