//! A self-contained diagnostics report (`check --report DIR`): one HTML page with the identity
//! table, the gradient-descent and EM curves of the run as inline SVG, and its warnings, so it
//! can be shared as a single file and opened in any browser (no scripts, no external files).

use std::fmt::Write;

use crate::core::check::CheckRow;
use crate::core::experiment::{Experiment, StepRecord};
use crate::core::reference::Derivative;
use crate::preset::Preset;

/// One series of a plot.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub colour: &'a str,
    /// `(x, y)` points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

/// HTML-escapes `s`.
#[must_use]
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number for an axis label: plain when moderate, scientific otherwise.
fn tick(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.2e}")
    }
}

/// An SVG line chart (640 × 240) of `series`; `log_y` plots `log10 y` (non-positive values
/// skipped) and labels the axis in powers of ten.
#[must_use]
pub fn line_chart(title: &str, x_label: &str, series: &[Series<'_>], log_y: bool) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 240.0, 70.0, 150.0, 28.0, 36.0);
    let tr = |y: f64| if log_y { y.log10() } else { y };
    let pts: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
                .map(|&(x, y)| (x, tr(y)))
                .collect()
        })
        .collect();
    let all = pts.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    if x0 > x1 {
        svg += r#"<text x="80" y="120">no finite values</text></svg>"#;
        return svg;
    }
    if (x1 - x0).abs() < 1e-300 {
        x1 = x0 + 1.0;
    }
    if (y1 - y0).abs() < 1e-12 * y1.abs().max(1e-300) {
        (y0, y1) = (y0 - 0.5 * y0.abs().max(1e-12), y1 + 0.5 * y1.abs().max(1e-12));
    }
    let (pw, ph) = (w - left - right, h - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| top + (1.0 - (y - y0) / (y1 - y0)) * ph;
    let _ = write!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for q in 0..=4 {
        let f = f64::from(q) / 4.0;
        let (yv, xv) = (y0 + f * (y1 - y0), x0 + f * (x1 - x0));
        let ylab = if log_y { format!("1e{yv:.1}") } else { tick(yv) };
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{ylab}</text>"##,
            left + pw,
            left - 4.0,
            sy(yv) + 4.0,
            y = sy(yv)
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            sx(xv),
            top + ph + 14.0,
            tick(xv)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 4.0,
        escape(x_label)
    );
    for (q, (s, p)) in series.iter().zip(&pts).enumerate() {
        let path: Vec<String> = p.iter().map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y))).collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"#,
            s.colour,
            path.join(" ")
        );
        let ly = top + 12.0 + 16.0 * q as f64;
        let _ = write!(
            svg,
            r#"<line x1="{x}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            left + pw + 26.0,
            s.colour,
            left + pw + 30.0,
            ly + 4.0,
            escape(s.name),
            x = left + pw + 10.0
        );
    }
    svg += "</svg>";
    svg
}

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/// The report page for `experiment` (its trace gives the curves) and the check `rows` taken at
/// its gradient-descent state.
#[must_use]
pub fn html(preset: &Preset, experiment: &Experiment, rows: &[CheckRow], method: Derivative, table: &str) -> String {
    let mut page = head(preset);
    page += &summary(preset, experiment, rows, method);
    page += &check_table(rows);
    page += &charts(experiment);
    page += &warnings(experiment.trace());
    let _ = writeln!(page, "<h2>The check as printed</h2>\n<pre>{}</pre>", escape(table));
    page += "</body></html>\n";
    page
}

/// The page's start: doctype, title, style sheet, the preset's name and its description.
fn head(preset: &Preset) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}: implicit-em-lab report</title>\
         <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.pass{{color:#1a7f37}}.fail{{color:#c62828;font-weight:bold}}\
         pre{{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}}</style></head><body>\n",
        title = escape(&preset.name)
    );
    let _ = writeln!(page, "<h1>{}</h1>", escape(&preset.name));
    if !preset.description.is_empty() {
        let _ = writeln!(page, "<p><em>{}</em></p>", escape(&preset.description));
    }
    page
}

/// The run's settings and the summary list: the verdict of `rows`, final losses, worst residual.
fn summary(preset: &Preset, experiment: &Experiment, rows: &[CheckRow], method: Derivative) -> String {
    let trace: &[StepRecord] = experiment.trace();
    let problem = experiment.problem();
    let last = experiment.latest();
    let passed = rows.iter().all(CheckRow::passed);
    let mut page = String::new();
    let _ = writeln!(
        page,
        "<p>{} objective, N = {}, K = {}, D = {}, T = {}, η = {}, rate {}; {} paired steps of gradient descent and explicit EM from the same start. \
         Generated by implicit-em-lab {}.</p>",
        preset.regime().name(),
        problem.effective_n(),
        experiment.gd_state().k,
        problem.dim,
        crate::core::math::readable(problem.spec.settings.temperature),
        crate::core::math::readable(preset.learning_rate),
        preset.rate.name(),
        last.step,
        env!("CARGO_PKG_VERSION")
    );
    let verdict = if passed {
        "<span class=\"pass\">all checks passed</span>"
    } else {
        "<span class=\"fail\">some checks FAILED</span>"
    };
    let worst_residual = trace.iter().map(|r| r.identity_residual).fold(0.0, f64::max);
    let _ = writeln!(
        page,
        "<h2>Summary</h2><ul><li>identity check at the final GD state ({}): {verdict}</li>\
         <li>final loss: GD {:.10e}, EM {:.10e}; distance between the prototype sets {:.3e}</li>\
         <li>largest per-step identity residual over the run: {worst_residual:.2e}</li>\
         <li>effective components: GD {:.3}, EM {:.3}</li></ul>",
        method.name(),
        last.gd.loss,
        last.em.loss,
        last.prototype_distance,
        last.effective_components.gd,
        last.effective_components.em
    );
    page
}

/// The table of the check `rows`, one line each, with its heading.
fn check_table(rows: &[CheckRow]) -> String {
    let mut page = String::new();
    page += "<h2>The identity and every exact gradient</h2>\n<table><tr><th>quantity</th><th>entries</th><th>closed form</th><th>independent</th><th>max deviation</th><th>tolerance</th><th>status</th></tr>\n";
    for r in rows {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.12e}</td><td>{:.12e}</td><td>{:.2e}</td><td>{:.1e}</td><td class=\"{}\">{}</td></tr>",
            escape(&r.quantity),
            r.entries,
            r.closed_form,
            r.independent,
            r.deviation,
            r.tolerance,
            if r.passed() { "pass" } else { "fail" },
            if r.passed() { "ok" } else { "FAILED" }
        );
    }
    page += "</table>\n";
    page
}

/// The charts of the trace: loss, prototype distance, identity residual and component masses.
fn charts(experiment: &Experiment) -> String {
    let trace: &[StepRecord] = experiment.trace();
    let step = |f: fn(&StepRecord) -> f64| -> Vec<(f64, f64)> { trace.iter().map(|r| (r.step as f64, f(r))).collect() };
    let mut page = String::new();
    page += "<h2>Gradient descent beside explicit EM</h2>\n";
    page += &line_chart(
        "loss J of each run",
        "step",
        &[
            Series {
                name: "gradient descent",
                colour: PALETTE[0],
                points: step(|r| r.gd.loss),
            },
            Series {
                name: "explicit EM",
                colour: PALETTE[1],
                points: step(|r| r.em.loss),
            },
        ],
        false,
    );
    page += "\n";
    page += &line_chart(
        "distance between the prototype sets",
        "step",
        &[Series {
            name: "√Σ‖μ_GD − μ_EM‖²",
            colour: PALETTE[2],
            points: step(|r| r.prototype_distance),
        }],
        false,
    );
    page += "\n";
    page += &line_chart(
        "identity residual per step (log scale)",
        "step",
        &[Series {
            name: "residual",
            colour: PALETTE[3],
            points: step(|r| r.identity_residual),
        }],
        true,
    );
    page += "\n";
    let k = experiment.gd_state().k;
    let names: Vec<String> = (0..k).map(|j| format!("N_{j}")).collect();
    let counts: Vec<Series<'_>> = (0..k.min(10))
        .map(|j| Series {
            name: &names[j],
            colour: PALETTE[j % PALETTE.len()],
            points: trace.iter().map(|r| (r.step as f64, r.gd.counts[j])).collect(),
        })
        .collect();
    page += &line_chart(
        "mass N_j of each component (GD run; rich get richer)",
        "step",
        &counts,
        false,
    );
    page += "\n";
    page
}

/// The warnings section: each kind of warning in `trace` once, with the steps it was seen at.
fn warnings(trace: &[StepRecord]) -> String {
    let mut page = String::new();
    page += "<h2>Warnings</h2>\n";
    // One line per kind of warning (its text up to the first parenthesis, where the numbers
    // start): the steps it was seen at, and its latest full text.
    let mut seen: Vec<(&str, usize, usize, usize, &str)> = Vec::new();
    for r in trace {
        for w in &r.warnings {
            let kind = w.split(" (").next().unwrap_or(w);
            match seen.iter_mut().find(|e| e.0 == kind) {
                Some(e) => (e.2, e.3, e.4) = (r.step, e.3 + 1, w.as_str()),
                None => seen.push((kind, r.step, r.step, 1, w)),
            }
        }
    }
    if seen.is_empty() {
        page += "<p>none</p>\n";
    } else {
        page += "<ul>\n";
        for (_, first, latest, times, text) in &seen {
            let _ = writeln!(
                page,
                "<li>{} — at {times} recorded steps, from step {first} to {latest}</li>",
                escape(text)
            );
        }
        page += "</ul>\n";
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_maps_its_data_range_onto_the_plot_area() {
        let svg = line_chart(
            "t",
            "x",
            &[Series {
                name: "a<b",
                colour: "#000",
                points: vec![(0.0, 1.0), (2.0, 3.0), (1.0, f64::NAN)],
            }],
            false,
        );
        // Plot area: x from 70 to 490 (640 − 70 − 150), y from 28 to 204 (240 − 28 − 36);
        // the lowest point at the bottom left, the highest at the top right; NaN skipped.
        assert!(svg.contains(r#"points="70.00,204.00 490.00,28.00""#), "{svg}");
        assert!(svg.contains("a&lt;b"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let log = line_chart(
            "t",
            "x",
            &[Series {
                name: "r",
                colour: "#000",
                points: vec![(0.0, 1e-16), (1.0, 0.0), (2.0, 1e-14)],
            }],
            true,
        );
        // log10: −16 at the bottom, −14 at the top; the zero is skipped.
        assert!(log.contains(r#"points="70.00,204.00 490.00,28.00""#), "{log}");
        assert!(log.contains(">1e-16.0<") && log.contains(">1e-14.0<"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
