//! The page walk of the failing address, drawn as its four levels with
//! each entry decoded (the checker's [`oracle::walk_levels`]).

use maud::{html, Markup};
use oracle::WalkLevel;

fn next_text(l: &WalkLevel) -> String {
    match (&l.next, &l.leaf, &l.raw) {
        (_, _, Err(e)) => format!("unreadable: {e}"),
        (Some((what, addr, bit)), _, _) => format!("→ {what} {addr:#x} (allocator: {bit})"),
        (None, Some(_), _) => "not present".into(),
        (None, None, _) => "not present: the walk stops".into(),
    }
}

/// One box per level, left to right, with an arrow to the next.
pub fn markup(virt: u64, levels: &[WalkLevel]) -> Markup {
    html! {
        p { "Walk of " code { (oracle::model::keys::SpaceAddr(virt).to_string()) } }
        ol class="walk" {
            @for l in levels {
                li class=(if l.next.is_some() { "level present" } else { "level stop" })
                    id=(format!("walk-{}", l.name)) {
                    div class="lvl" { (l.name) "[" (l.index) "]" }
                    div { "table " code { (format!("{:#x}", l.table)) } }
                    @if let Ok(raw) = l.raw {
                        div { "entry " code { (format!("{raw:#018x}")) } }
                        div { code { (l.flags) } }
                    }
                    @if let Some(leaf) = &l.leaf {
                        div class="leaf" { (format!("{leaf:?}")) }
                    }
                    div class="next" { (next_text(l)) }
                }
            }
        }
    }
}
