//! E0104: a record that contains itself other than through `list`, `map`
//! or `?`, which would be an infinite value.

use super::Facts;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{RecordId, Type};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashSet as HashSet;

use crate::analysis::cycle_path::shortest_cycle;

pub(crate) fn check(facts: &Facts<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = facts.spec;
    // Edge R → S, weighted by the field, when R holds an S directly.
    let mut graph: DiGraph<RecordId, usize> = DiGraph::new();
    for i in 0..spec.records.len() {
        graph.add_node(RecordId::from_index(i));
    }
    for (i, r) in spec.records.iter().enumerate() {
        for (f, field) in r.fields.iter().enumerate() {
            if let Type::Record(target) = field.ty {
                graph.add_edge(NodeIndex::new(i), NodeIndex::new(target.index()), f);
            }
        }
    }
    let mut components = kosaraju_scc(&graph);
    for c in &mut components {
        c.sort();
    }
    components.sort();
    for component in components {
        let start = component[0];
        let self_loop = graph.contains_edge(start, start);
        if component.len() == 1 && !self_loop {
            continue;
        }
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let Some(cycle) = shortest_cycle(&graph, start, &members) else {
            continue;
        };
        // Step i+1 was reached through field w of the record at step i.
        let steps: Vec<(RecordId, usize)> = cycle
            .windows(2)
            .filter_map(|w| w[1].1.map(|field| (w[0].0, field)))
            .collect();
        let r = &spec.records[start.index()];
        let path = steps
            .iter()
            .map(|(n, f)| {
                let rec = spec.record(*n);
                format!("`{}.{}`", rec.name.text, rec.fields[*f].name.text)
            })
            .collect::<Vec<_>>()
            .join(" → ");
        let Some(&(first_rec, first_field)) = steps.first() else {
            continue;
        };
        let field = &spec.record(first_rec).fields[first_field];
        let mut d = Diagnostic::new(
            Code::E0104,
            field.span,
            format!("type `{}` contains itself: {path} → `{}`", r.name.text, r.name.text),
        )
        .with_primary_message("this field holds the type directly")
        .with_help("a value of this type would be infinite; make one field of the cycle optional (`T?`), a `list<T>` or a `map<string, T>`");
        for &(n, f) in steps.iter().skip(1) {
            d = d.with_label(spec.record(n).fields[f].span, "and this one");
        }
        diags.push(d);
    }
}
