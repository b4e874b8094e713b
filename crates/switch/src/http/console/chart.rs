//! Charts drawn on the server as SVG: no script, no library, nothing for
//! the content security policy to allow but the page itself.

use std::fmt::Write;

/// A bar chart of `bars` (label, value), `title` read by screen readers.
/// Labels are escaped; values below zero are drawn as zero. The chart is
/// as wide as its container (a phone's width too).
pub fn bars(title: &str, bars: &[(String, i64)]) -> String {
    const W: i64 = 600;
    const H: i64 = 162;
    const BASE: i64 = 160;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let n = i64::try_from(bars.len()).unwrap_or(1).max(1);
    let step = W / n;
    let width = (step * 8 / 10).max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<figure class="chart"><svg class="chart" viewBox="0 0 {W} {H}" role="img" preserveAspectRatio="none"><title>{}</title><line x1="0" y1="{BASE}" x2="{W}" y2="{BASE}" class="axis"/>"#,
        escape(title)
    );
    for (i, (label, value)) in (0i64..).zip(bars) {
        let h = (value.max(&0) * (BASE - 10) / max).max(i64::from(*value > 0));
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{width}" height="{h}"><title>{}</title></rect>"#,
            i * step + (step - width) / 2,
            BASE - h,
            escape(label)
        );
    }
    out.push_str("</svg>");
    // The first and last days under the chart, as text: inside an SVG
    // stretched to the page's width they would be stretched too. Time
    // runs left to right in both languages, as on a printed chart.
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let _ = write!(
            out,
            r#"<figcaption dir="ltr"><span class="from">{}</span><span class="to">{}</span></figcaption>"#,
            escape(&first.0),
            escape(&last.0)
        );
    }
    out.push_str("</figure>");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_bar_per_value_and_escapes_its_labels() {
        let svg = bars(
            "sales",
            &[("<a>".into(), 10), ("b".into(), 0), ("c".into(), -5)],
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert!(svg.contains(r#"height="150""#), "{svg}");
        assert!(svg.contains(r#"height="0""#), "{svg}");
    }
}
