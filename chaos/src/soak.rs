//! A soak's samples: every process's resident memory, the stores' keys
//! and the streams' messages, taken at a steady interval, judged flat or
//! growing, and drawn as an SVG plot.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::servers::BrokerKind;

/// One sample.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sample {
    /// Seconds from the start.
    pub at_s: f64,
    /// Resident memory by participant (its replicas summed), in KiB.
    pub rss_kib: BTreeMap<String, u64>,
    /// Keys the stores hold (done-marks, claims, join slots, counters).
    pub store_keys: u64,
    /// Messages the streams hold.
    pub stream_messages: u64,
    /// Instances settled so far.
    pub settled: usize,
}

/// A sample `at_s` seconds in: every process's resident memory (a
/// participant's replicas summed) and what the broker's server holds
/// (`counts`, from [`broker_counts`]); `None` when the server did not
/// answer, so that a sample is left out rather than read as empty.
pub fn sample(
    fleet: &crate::fleet::Fleet,
    counts: Option<(u64, u64)>,
    at_s: f64,
    settled: usize,
) -> Option<Sample> {
    let (store_keys, stream_messages) = counts?;
    let mut rss_kib: BTreeMap<String, u64> = BTreeMap::new();
    for (label, kib) in fleet.rss() {
        let p = label.split('#').next().unwrap_or(&label).to_owned();
        *rss_kib.entry(p).or_default() += kib;
    }
    Some(Sample {
        at_s,
        rss_kib,
        store_keys,
        stream_messages,
        settled,
    })
}

/// Counts what the broker's server holds for the deployment under
/// `prefix`, whose topics are `topics`: `(store keys, stream messages)`;
/// `None` when the server does not answer (a sample is then left out
/// rather than read as empty).
pub async fn broker_counts(
    kind: BrokerKind,
    url: &str,
    prefix: &str,
    topics: &[String],
) -> Option<(u64, u64)> {
    match kind {
        BrokerKind::Redis => redis_counts(url, topics).await,
        _ => nats_counts(url, prefix).await,
    }
}

async fn nats_counts(url: &str, prefix: &str) -> Option<(u64, u64)> {
    use choreo_runtime::broker::NatsBroker;
    use choreo_runtime::store::{NatsKvStores, StoreOptions};
    let b = NatsBroker::connect(url).await.ok()?;
    let js = b.jetstream();
    let messages = |name: String| {
        let js = js.clone();
        async move {
            let mut s = js.get_stream(name).await.ok()?;
            s.info().await.ok().map(|i| i.state.messages)
        }
    };
    let stream = messages(NatsBroker::stream_name(prefix)).await?;
    let mut keys = 0;
    for bucket in NatsKvStores::bucket_names(&StoreOptions::with_prefix(prefix)) {
        keys += messages(format!("KV_{bucket}")).await?;
    }
    Some((keys, stream))
}

/// On the campaign's own Redis server every key is the deployment's: the
/// stores' keys are all keys but the streams, and the streams are the
/// topics' (`choreo:<topic>`). `KEYS` over a few hundred thousand keys
/// outlasts the client's response timeout, so it is not used.
async fn redis_counts(url: &str, topics: &[String]) -> Option<(u64, u64)> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let all: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.ok()?;
    let (mut streams, mut messages) = (0u64, 0u64);
    for topic in topics {
        let len: u64 = redis::cmd("XLEN")
            .arg(format!("choreo:{topic}"))
            .query_async(&mut conn)
            .await
            .ok()?;
        if len > 0 {
            streams += 1;
            messages += len;
        }
    }
    Some((all.saturating_sub(streams), messages))
}

/// What grew over a soak: the series whose last third peaks more than a
/// quarter (and a margin) above its middle third's peak. Before the
/// middle third the retention windows are still filling.
pub fn growing(samples: &[Sample]) -> Vec<String> {
    let n = samples.len();
    if n < 6 {
        return vec![format!(
            "only {n} samples: too short a soak to judge growth"
        )];
    }
    let (mid, last) = (&samples[n / 3..2 * n / 3], &samples[2 * n / 3..]);
    let peak = |s: &[Sample], f: &dyn Fn(&Sample) -> u64| s.iter().map(f).max().unwrap_or(0);
    let mut out = Vec::new();
    let mut check = |what: String, f: &dyn Fn(&Sample) -> u64, margin: u64| {
        let (m, l) = (peak(mid, f), peak(last, f));
        if l > m + m / 4 + margin {
            out.push(format!(
                "{what} grew: peak {m} in the middle third, {l} in the last"
            ));
        }
    };
    let names: Vec<String> = samples[0].rss_kib.keys().cloned().collect();
    for name in names {
        let key = name.clone();
        check(
            format!("{name}'s memory (KiB)"),
            &move |s: &Sample| s.rss_kib.get(&key).copied().unwrap_or(0),
            4096,
        );
    }
    check("the stores' keys".into(), &|s| s.store_keys, 200);
    check("the streams' messages".into(), &|s| s.stream_messages, 200);
    out
}

/// Draws the samples to `path` as SVG: each participant's memory above,
/// the stores' keys and the streams' messages below.
pub fn plot(samples: &[Sample], title: &str, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(420);
    let end = samples.last().map_or(1.0, |s| s.at_s).max(1.0);
    let names: Vec<String> = samples
        .first()
        .map(|s| s.rss_kib.keys().cloned().collect())
        .unwrap_or_default();
    let memory: Vec<Line> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Line {
            label: name.clone(),
            color: Palette99::pick(i).to_rgba(),
            points: samples
                .iter()
                .map(|s| {
                    let kib = s.rss_kib.get(name).copied().unwrap_or(0);
                    (s.at_s, kib as f64 / 1024.0)
                })
                .collect(),
        })
        .collect();
    chart(
        &top,
        &format!("{title}: resident memory"),
        Some("MiB"),
        end,
        &memory,
    )?;
    let counts = [
        (
            "store keys",
            BLUE,
            (|s: &Sample| s.store_keys) as fn(&Sample) -> u64,
        ),
        ("stream messages", RED, |s: &Sample| s.stream_messages),
    ]
    .map(|(label, color, count)| Line {
        label: label.to_owned(),
        color: color.to_rgba(),
        points: samples.iter().map(|s| (s.at_s, count(s) as f64)).collect(),
    });
    chart(
        &bottom,
        "stores' keys and streams' messages",
        None,
        end,
        &counts,
    )?;
    root.present().map_err(|e| e.to_string())
}

/// One line of a chart.
struct Line {
    label: String,
    color: RGBAColor,
    points: Vec<(f64, f64)>,
}

/// Draws `lines` on `area` over `0..end` seconds, the y axis up to 15 %
/// above the highest point, with a legend.
fn chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_desc: Option<&str>,
    end: f64,
    lines: &[Line],
) -> Result<(), String> {
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(|e| e.to_string())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc("seconds");
    if let Some(y) = y_desc {
        mesh.y_desc(y);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn series(rss: &[u64], keys: &[u64]) -> Vec<Sample> {
        rss.iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (r, k))| Sample {
                at_s: i as f64 * 10.0,
                rss_kib: [("Payment".to_string(), *r)].into_iter().collect(),
                store_keys: *k,
                stream_messages: 1000,
                settled: i,
            })
            .collect()
    }

    #[test]
    fn flat_series_pass_and_growing_ones_are_named() {
        let flat = series(
            &[
                20_000, 40_000, 41_000, 40_500, 41_200, 40_900, 41_000, 40_800, 41_100,
            ],
            &[0, 500, 900, 950, 940, 960, 955, 950, 960],
        );
        assert!(growing(&flat).is_empty(), "{:?}", growing(&flat));
        let leak = series(
            &[
                20_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000, 110_000,
            ],
            &[0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000],
        );
        let found = growing(&leak);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("Payment's memory"), "{found:?}");
        assert!(found[1].starts_with("the stores' keys"), "{found:?}");
        assert_eq!(growing(&leak[..3]).len(), 1, "too short to judge");
    }

    #[test]
    fn the_plot_is_an_svg_with_every_series() {
        let path = std::env::temp_dir().join(format!("choreo-soak-{}.svg", std::process::id()));
        plot(&series(&[1, 2, 3], &[4, 5, 6]), "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for label in [
            "Payment",
            "store keys",
            "stream messages",
            "resident memory",
        ] {
            assert!(svg.contains(label), "no {label}");
        }
    }
}
