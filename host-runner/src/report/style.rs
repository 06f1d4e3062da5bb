//! The report's stylesheet (inline: the page fetches nothing).

pub const CSS: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
code, pre { font-family: ui-monospace, monospace; font-size: 12px; }
pre.message { background: #f6f6f6; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.verdict { font-size: 16px; font-weight: 600; padding: .4em .6em; border-radius: 4px; }
.verdict.failed { background: #fde8e8; color: #9b1c1c; }
.verdict.passed { background: #e6f4ea; color: #1e6b34; }
.note { color: #8a4b00; }
.legend { display: flex; flex-wrap: wrap; gap: .3em 1.2em; margin: .4em 0; font-size: 12px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin-right: .3em; vertical-align: -1px; border: 1px solid #999; }
.side { margin: .3em 0 .1em; font-size: 12px; color: #555; }
svg text.label { font: 10px ui-monospace, monospace; fill: #555; }
.st-ram { fill: #2f80ed; background: #2f80ed; }
.st-file { fill: #27ae60; background: #27ae60; }
.st-aow { fill: #a8d0ff; background: #a8d0ff; }
.st-filenp { fill: #b7e4c7; background: #b7e4c7; }
.st-swap { fill: #f2994a; background: #f2994a; }
.st-unusable { fill: #eeeeee; background: #eeeeee; }
.st-corrupt { fill: #000; background: #000; }
.st-pinned { fill: #6a1b9a; background: #6a1b9a; }
.st-pinaow { fill: #d1b3e6; background: #d1b3e6; }
.st-shared { fill: #00897b; background: #00897b; }
rect.diff { stroke: #e00; stroke-width: 2; }
rect.failing { stroke: #000; stroke-width: 3; }
.diff-key { border: 2px solid #e00; }
.failing-key { border: 3px solid #000; }
.fr-free { fill: #f4f4f4; background: #f4f4f4; }
.fr-data { fill: #2f80ed; background: #2f80ed; }
.fr-table { fill: #9b51e0; background: #9b51e0; }
.fr-heap { fill: #56ccf2; background: #56ccf2; }
.fr-swap { fill: #f2994a; background: #f2994a; }
.fr-host { fill: #6fcf97; background: #6fcf97; }
.fr-kernel { fill: #828282; background: #828282; }
.fr-leak { fill: #eb5757; background: #eb5757; }
.fr-conflict { fill: #f2c94c; background: #f2c94c; }
rect.named { fill: none; stroke: #e00; stroke-width: 1.5; }
.named-key { border: 2px solid #e00; background: none; }
ol.walk { display: flex; flex-wrap: wrap; gap: .6em; list-style: none; padding: 0; }
ol.walk li { border: 1px solid #bbb; border-radius: 4px; padding: .4em .6em; min-width: 14em; font-size: 12px; }
ol.walk li.stop { border-color: #e00; }
ol.walk .lvl { font-weight: 600; font-size: 14px; }
ol.walk .leaf { color: #1e4f9b; }
table.steps { border-collapse: collapse; font-size: 12px; }
table.steps td, table.steps th { border-bottom: 1px solid #e4e4e4; padding: .15em .5em; text-align: left; vertical-align: top; }
table.steps td.num { text-align: right; }
tr.failing { background: #fde8e8; font-weight: 600; }
details.early summary { cursor: pointer; margin: .3em 0; }
"#;

/// What the campaign report adds.
pub const CAMPAIGN_CSS: &str = r#"
table#figures th { text-align: left; padding-right: 1em; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; }
svg.chart line.axis { stroke: #999; stroke-width: 1; }
svg.chart polyline.ops { fill: none; stroke: #2f80ed; stroke-width: 2; }
svg.chart circle.found { fill: #eb5757; stroke: #fff; stroke-width: 1; }
code.replay { color: #555; }
tr.cold td { color: #9a9a9a; }
details.cov-file { margin: .2em 0; }
details.cov-file summary { cursor: pointer; }
details.cov-file table { margin: .3em 0 .6em 1.2em; }
span.class { white-space: nowrap; margin-right: .6em; }
table.steps + table.steps { margin-top: 1em; }
"#;
