//! Name resolution: from the AST to the [`Spec`], reporting E0100–E0107.

use super::attributes::{self, Target};
use super::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::suggest;
use crate::syntax::ast::{self, ItemKind, LiteralKind, TypeExpr};
use rustc_hash::FxHashMap as HashMap;

use super::namespace::{Decl, Namespace};

struct Builder {
    diags: Vec<Diagnostic>,
    names: Namespace,
    /// Each message's kind, apart from the large `Message`s: every
    /// reference checks it.
    kinds: Vec<MessageKind>,
    /// Whether any message is `@external`.
    any_external: bool,
    /// Per item of the choreography, what it declared when it is the
    /// declaration its name is bound to: the later passes read this
    /// instead of looking every item's name up again (on a large spec
    /// each lookup is a trip to memory).
    declared: Vec<Option<Decl>>,
    /// Where the `key` items are, noted while declaring, so that finding
    /// them is not another pass over every item.
    keys: Vec<usize>,
    spec: Spec,
}

pub(super) fn build(file: &ast::File) -> (Spec, Vec<Diagnostic>) {
    let chor = &file.choreography;
    // Sized up front: on a large spec, growing these tables by doubling
    // copies them into fresh memory several times over.
    let (mut messages, mut participants, mut reactions) = (0, 0, 0);
    for item in &chor.items {
        match &item.kind {
            ItemKind::Command(_) | ItemKind::Event(_) => messages += 1,
            ItemKind::Participant { reactions: r, .. } => {
                participants += 1;
                reactions += r.len();
            }
            _ => {}
        }
    }
    let names = Namespace::with_capacity(chor.items.len());
    let mut b = Builder {
        diags: Vec::new(),
        names,
        kinds: Vec::with_capacity(messages),
        any_external: false,
        declared: vec![None; chor.items.len()],
        keys: Vec::new(),
        spec: Spec {
            name: Name::from_ident(&chor.name),
            docs: chor.prefix.docs.clone(),
            version: None,
            key: None,
            records: Vec::new(),
            enums: Vec::new(),
            messages: Vec::with_capacity(messages),
            participants: Vec::with_capacity(participants),
            reactions: Vec::with_capacity(reactions),
            flow: Flow::default(),
            span: chor.span,
        },
    };
    attributes::interpret(&chor.prefix.attrs, Target::Choreography, &mut b.diags);
    attributes::interpret(&chor.trailing_attrs, Target::Nothing, &mut b.diags);
    attributes::interpret(&file.trailing_attrs, Target::Nothing, &mut b.diags);

    b.declare(chor);
    b.resolve_fields(chor);
    let key_span = b.resolve_key(chor);
    b.resolve_reactions(chor);
    b.check_key_shadowing(key_span);
    b.check_http_paths();
    b.check_command_handlers();
    b.check_external_emitted();
    b.check_reaction_clashes();
    b.spec.flow = Flow::build(&b.spec);
    (b.spec, b.diags)
}

fn docs(prefix: &ast::Prefix) -> Docs {
    prefix.docs.clone()
}

impl Builder {
    /// Declares every named item and interprets item attributes.
    fn declare(&mut self, chor: &ast::Choreography) {
        let mut version_span: Option<Span> = None;
        for (at, item) in chor.items.iter().enumerate() {
            // With the id the item gets if its name is free: each list
            // grows by one for every item of its kind that is bound.
            let (name, target, decl) = match &item.kind {
                ItemKind::Version(lit) => {
                    attributes::interpret(&item.prefix.attrs, Target::Version, &mut self.diags);
                    if let Some(first) = version_span {
                        self.diags.push(
                            Diagnostic::new(Code::E0100, item.span, "`version` is declared twice")
                                .with_primary_message("second declaration")
                                .with_label(first, "first declared here")
                                .with_help("a choreography has one version; remove one"),
                        );
                        continue;
                    }
                    version_span = Some(item.span);
                    self.version(lit);
                    continue;
                }
                ItemKind::Key { .. } => {
                    self.keys.push(at);
                    continue;
                }
                ItemKind::Type(rec) => (
                    &rec.name,
                    Target::Type,
                    Decl::Record(RecordId::from_index(self.spec.records.len())),
                ),
                ItemKind::Enum { name, .. } => (
                    name,
                    Target::Enum,
                    Decl::Enum(EnumId::from_index(self.spec.enums.len())),
                ),
                ItemKind::Command(rec) | ItemKind::Event(rec) => (
                    &rec.name,
                    if matches!(item.kind, ItemKind::Command(_)) {
                        Target::Command
                    } else {
                        Target::Event
                    },
                    Decl::Message(MessageId::from_index(self.spec.messages.len())),
                ),
                ItemKind::Participant { name, .. } => (
                    name,
                    Target::Participant,
                    Decl::Participant(ParticipantId::from_index(self.spec.participants.len())),
                ),
            };
            let attrs = attributes::interpret(&item.prefix.attrs, target, &mut self.diags);
            if matches!(target, Target::Type | Target::Enum)
                && Scalar::from_name(&name.name).is_some()
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0100,
                        name.span,
                        format!("`{}` is a built-in type", name.name),
                    )
                    .with_primary_message("cannot be declared again")
                    .with_help("choose another name"),
                );
                continue;
            }
            if let Err(first) = self.names.bind(&name.name, decl, name.span) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0100,
                        name.span,
                        format!("`{}` is defined more than once", name.name),
                    )
                    .with_primary_message("defined again here")
                    .with_label(first, "first defined here")
                    .with_help(
                        "types, enums, commands, events and participants share one namespace; rename one of them",
                    ),
                );
                continue;
            }
            match &item.kind {
                ItemKind::Type(_) => {
                    self.spec.records.push(Record {
                        name: Name::from_ident(name),
                        docs: docs(&item.prefix),
                        fields: Vec::new(),
                        deprecated: attrs.deprecated,
                        span: item.span,
                    });
                }
                ItemKind::Enum {
                    variants,
                    trailing_attrs,
                    ..
                } => {
                    attributes::interpret(trailing_attrs, Target::Nothing, &mut self.diags);
                    let mut seen: HashMap<&str, Span> = HashMap::default();
                    let mut out = Vec::new();
                    for v in variants {
                        attributes::interpret(&v.prefix.attrs, Target::Variant, &mut self.diags);
                        if let Some(first) = seen.get(v.name.name.as_str()) {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::E0100,
                                    v.name.span,
                                    format!("variant `{}` is declared twice", v.name.name),
                                )
                                .with_primary_message("declared again here")
                                .with_label(*first, "first declared here"),
                            );
                            continue;
                        }
                        seen.insert(&v.name.name, v.name.span);
                        out.push(super::Variant {
                            name: Name::from_ident(&v.name),
                            docs: docs(&v.prefix),
                        });
                    }
                    self.spec.enums.push(Enum {
                        name: Name::from_ident(name),
                        docs: docs(&item.prefix),
                        variants: out,
                        deprecated: attrs.deprecated,
                        span: item.span,
                    });
                }
                ItemKind::Command(_) | ItemKind::Event(_) => {
                    let kind = if target == Target::Command {
                        MessageKind::Command
                    } else {
                        MessageKind::Event
                    };
                    self.kinds.push(kind);
                    self.any_external |= attrs.external.is_some();
                    self.spec.messages.push(Message {
                        kind,
                        name: Name::from_ident(name),
                        docs: docs(&item.prefix),
                        fields: Vec::new(),
                        terminal: attrs.terminal,
                        external: attrs.external,
                        http: attrs.http.map(|(method, path, _, span)| {
                            Box::new(HttpRoute { method, path, span })
                        }),
                        deadline: attrs.deadline,
                        deprecated: attrs.deprecated,
                        span: item.span,
                    });
                }
                ItemKind::Participant { .. } => {
                    self.spec.participants.push(Participant {
                        name: Name::from_ident(name),
                        docs: docs(&item.prefix),
                        reactions: Vec::new(),
                        deprecated: attrs.deprecated,
                        span: item.span,
                    });
                }
                ItemKind::Version(_) | ItemKind::Key { .. } => {}
            }
            if let Some(slot) = self.declared.get_mut(at) {
                *slot = Some(decl);
            }
        }
    }

    fn version(&mut self, lit: &ast::Literal) {
        let LiteralKind::String(text) = &lit.kind else {
            return;
        };
        match semver::Version::parse(text) {
            Ok(value) => {
                self.spec.version = Some(Version {
                    value,
                    span: lit.span,
                })
            }
            Err(err) => self.diags.push(
                Diagnostic::new(
                    Code::E0106,
                    lit.span,
                    format!("`{text}` is not a semantic version"),
                )
                .with_primary_message(err.to_string())
                .with_help("write it as MAJOR.MINOR.PATCH, for example `1.0.0`"),
            ),
        }
    }

    fn decl(&self, name: &str) -> Option<Decl> {
        self.names.get(name).map(|(d, _)| d)
    }

    fn resolve_fields(&mut self, chor: &ast::Choreography) {
        for (at, item) in chor.items.iter().enumerate() {
            let (rec, trailing) = match &item.kind {
                ItemKind::Type(rec) | ItemKind::Command(rec) | ItemKind::Event(rec) => {
                    (rec, &rec.trailing_attrs)
                }
                _ => continue,
            };
            attributes::interpret(trailing, Target::Nothing, &mut self.diags);
            // Only the first declaration of a name is in the model.
            let Some(decl) = self.declared.get(at).copied().flatten() else {
                continue;
            };
            let fields = self.fields(&rec.fields);
            match decl {
                Decl::Record(id) => self.spec.records[id.index()].fields = fields,
                Decl::Message(id) => self.spec.messages[id.index()].fields = fields,
                _ => {}
            }
        }
    }

    fn fields(&mut self, fields: &[ast::Field]) -> Vec<Field> {
        // Records have a handful of fields, and scanning those kept so far
        // beats a hash map per record; long records get one.
        const SCAN_UP_TO: usize = 16;
        let mut seen: HashMap<&str, Span> = HashMap::default();
        let mut out: Vec<Field> = Vec::with_capacity(fields.len());
        for f in fields {
            attributes::interpret(&f.prefix.attrs, Target::Field, &mut self.diags);
            let ty = self.resolve_type(&f.ty);
            let name = f.name.name.as_str();
            let first = if fields.len() <= SCAN_UP_TO {
                out.iter()
                    .find(|k| k.name.text == name)
                    .map(|k| k.name.span)
            } else {
                seen.get(name).copied()
            };
            if let Some(first) = first {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0100,
                        f.name.span,
                        format!("field `{}` is declared twice", f.name.name),
                    )
                    .with_primary_message("declared again here")
                    .with_label(first, "first declared here"),
                );
                continue;
            }
            if fields.len() > SCAN_UP_TO {
                seen.insert(name, f.name.span);
            }
            out.push(Field {
                name: Name::from_ident(&f.name),
                docs: docs(&f.prefix),
                ty,
                ty_span: f.ty.span(),
                span: f.span,
            });
        }
        out
    }

    fn resolve_type(&mut self, ty: &TypeExpr) -> Type {
        match ty {
            TypeExpr::List(inner, _) => Type::List(Box::new(self.resolve_type(inner))),
            TypeExpr::Map(inner, _) => Type::Map(Box::new(self.resolve_type(inner))),
            TypeExpr::Optional(inner, _) => Type::Optional(Box::new(self.resolve_type(inner))),
            TypeExpr::Named(ident) => {
                if let Some(s) = Scalar::from_name(&ident.name) {
                    return Type::Scalar(s);
                }
                match self.decl(&ident.name) {
                    Some(Decl::Record(id)) => Type::Record(id),
                    Some(Decl::Enum(id)) => Type::Enum(id),
                    Some(other) => {
                        let what = self.describe(other);
                        self.diags.push(
                            Diagnostic::new(
                                Code::E0101,
                                ident.span,
                                format!("`{}` is {what}, not a type", ident.name),
                            )
                            .with_primary_message("expected a type")
                            .with_help(
                                "only built-in types, `type`s and `enum`s can be field types",
                            ),
                        );
                        Type::Error
                    }
                    None => {
                        let candidates: Vec<&str> = Scalar::ALL
                            .iter()
                            .map(|(n, _)| *n)
                            .chain(self.spec.records.iter().map(|r| r.name.text.as_str()))
                            .chain(self.spec.enums.iter().map(|e| e.name.text.as_str()))
                            .chain(["list", "map"])
                            .collect();
                        let mut d = Diagnostic::new(
                            Code::E0101,
                            ident.span,
                            format!("unknown type `{}`", ident.name),
                        )
                        .with_primary_message("not a built-in type, `type` or `enum`");
                        if let Some(best) = suggest::closest(&ident.name, candidates) {
                            d = d.with_help(format!("did you mean `{best}`?"));
                        }
                        self.diags.push(d);
                        Type::Error
                    }
                }
            }
        }
    }

    fn describe(&self, decl: Decl) -> &'static str {
        match decl {
            Decl::Record(_) => "a type",
            Decl::Enum(_) => "an enum",
            Decl::Message(id) => match self.kinds[id.index()] {
                MessageKind::Command => "a command",
                MessageKind::Event => "an event",
            },
            Decl::Participant(_) => "a participant",
        }
    }

    /// Resolves `key`; returns the span of its name.
    fn resolve_key(&mut self, chor: &ast::Choreography) -> Option<Span> {
        let mut first: Option<&ast::Item> = None;
        for item in std::mem::take(&mut self.keys)
            .into_iter()
            .filter_map(|at| chor.items.get(at))
        {
            let ItemKind::Key { name, ty } = &item.kind else {
                continue;
            };
            attributes::interpret(&item.prefix.attrs, Target::Key, &mut self.diags);
            if let Some(f) = first {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0102,
                        item.span,
                        "the correlation key is declared twice",
                    )
                    .with_primary_message("second declaration")
                    .with_label(f.span, "first declared here")
                    .with_help("a choreography has exactly one key; remove one"),
                );
                continue;
            }
            first = Some(item);
            let scalar = match ty {
                TypeExpr::Named(ident) => Scalar::from_name(&ident.name),
                _ => None,
            };
            match scalar {
                Some(s) if s.is_key_type() => {
                    self.spec.key = Some(Key {
                        name: Name::from_ident(name),
                        ty: s,
                        docs: docs(&item.prefix),
                        span: item.span,
                    });
                }
                _ => {
                    if let TypeExpr::Named(ident) = ty {
                        if Scalar::from_name(&ident.name).is_none()
                            && self.decl(&ident.name).is_none()
                        {
                            // Report the unknown name the same way as elsewhere.
                            self.resolve_type(ty);
                            continue;
                        }
                    }
                    self.diags.push(
                        Diagnostic::new(
                            Code::E0102,
                            ty.span(),
                            "the correlation key must be a string, a uuid or an integer",
                        )
                        .with_primary_message("not usable as a key")
                        .with_help("the key identifies an instance by value: use `uuid`, `string`, `u64`, `u32`, `i64` or `i32`"),
                    );
                }
            }
        }
        if first.is_none() {
            self.diags.push(
                Diagnostic::new(
                    Code::E0102,
                    chor.name.span,
                    format!("choreography `{}` has no correlation key", chor.name.name),
                )
                .with_primary_message("no `key` declared")
                .with_help(
                    "declare the key every event and command carries, e.g. `key order_id: uuid`",
                ),
            );
        }
        first.and_then(|item| match &item.kind {
            ItemKind::Key { name, .. } => Some(name.span),
            _ => None,
        })
    }

    fn resolve_reactions(&mut self, chor: &ast::Choreography) {
        for (at, item) in chor.items.iter().enumerate() {
            let ItemKind::Participant {
                reactions,
                trailing_attrs,
                ..
            } = &item.kind
            else {
                continue;
            };
            attributes::interpret(trailing_attrs, Target::Nothing, &mut self.diags);
            // Only the first declaration of a name is in the model.
            let Some(Some(Decl::Participant(pid))) = self.declared.get(at).copied() else {
                continue;
            };
            self.spec.participants[pid.index()]
                .reactions
                .reserve_exact(reactions.len());
            for r in reactions {
                let attrs =
                    attributes::interpret(&r.prefix.attrs, Target::Reaction, &mut self.diags);
                let trigger = self.trigger(&r.trigger);
                let outcomes = r.outcomes.as_ref().map(|outs| self.outcomes(outs));
                let compensates = r.compensates.as_ref().and_then(|c| self.compensated(c));
                let id = ReactionId::from_index(self.spec.reactions.len());
                self.spec.reactions.push(Reaction {
                    participant: pid,
                    docs: docs(&r.prefix),
                    trigger,
                    outcomes,
                    compensates,
                    retry: attrs.retry,
                    timeout: attrs.timeout,
                    bounded: attrs.bounded,
                    span: r.span,
                });
                self.spec.participants[pid.index()].reactions.push(id);
            }
        }
    }

    fn message_ref(&mut self, ident: &ast::Ident, role: Role) -> Option<Ref<MessageId>> {
        match self.decl(&ident.name) {
            Some(Decl::Message(id)) => {
                let kind = self.kinds[id.index()];
                if kind == MessageKind::Command && role != Role::Trigger {
                    let (message, help) = match role {
                        Role::Outcome => (
                            format!("`{}` is a command and cannot be emitted", ident.name),
                            "commands come from outside the choreography; emit an event instead",
                        ),
                        _ => (
                            format!("`{}` is a command and cannot be compensated", ident.name),
                            "`compensates` names the event whose effect the reaction undoes",
                        ),
                    };
                    self.diags.push(
                        Diagnostic::new(Code::E0101, ident.span, message)
                            .with_primary_message("expected an event")
                            .with_help(help),
                    );
                    return None;
                }
                Some(Ref {
                    id,
                    span: ident.span,
                })
            }
            Some(other) => {
                let what = self.describe(other);
                let expected = match role {
                    Role::Trigger => "an event or command",
                    _ => "an event",
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::E0101,
                        ident.span,
                        format!("`{}` is {what}, not {expected}", ident.name),
                    )
                    .with_primary_message(format!("expected {expected}")),
                );
                None
            }
            None => {
                let candidates: Vec<&str> = self
                    .spec
                    .messages
                    .iter()
                    .filter(|m| role == Role::Trigger || m.is_event())
                    .map(|m| m.name.text.as_str())
                    .collect();
                let what = match role {
                    Role::Trigger => "event or command",
                    _ => "event",
                };
                let mut d = Diagnostic::new(
                    Code::E0101,
                    ident.span,
                    format!("unknown {what} `{}`", ident.name),
                )
                .with_primary_message(format!("no {what} of this name"));
                if let Some(best) = suggest::closest(&ident.name, candidates) {
                    d = d.with_help(format!("did you mean `{best}`?"));
                } else {
                    d = d.with_help(format!("declare it with `event {} {{ … }}`", ident.name));
                }
                self.diags.push(d);
                None
            }
        }
    }

    fn trigger(&mut self, t: &ast::Trigger) -> Trigger {
        // Sized exactly: a large spec holds one list per reaction, and a
        // growing vector starts at four.
        let mut messages: Vec<Ref<MessageId>> = Vec::with_capacity(t.names.len());
        for ident in &t.names {
            let Some(r) = self.message_ref(ident, Role::Trigger) else {
                continue;
            };
            if let Some(first) = messages.iter().find(|m| m.id == r.id) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0100,
                        ident.span,
                        format!("`{}` appears twice in one trigger", ident.name),
                    )
                    .with_primary_message("repeated here")
                    .with_label(first.span, "first named here"),
                );
                continue;
            }
            messages.push(r);
        }
        Trigger {
            kind: t.kind,
            messages,
            span: t.span,
        }
    }

    fn outcomes(&mut self, outs: &[ast::Outcome]) -> Vec<Outcome> {
        let mut result: Vec<Outcome> = Vec::with_capacity(outs.len());
        for o in outs {
            let outcome = match o {
                ast::Outcome::None(span) => Outcome {
                    events: Vec::new(),
                    span: *span,
                },
                ast::Outcome::Emit(names, span) => {
                    let mut events: Vec<Ref<MessageId>> = Vec::with_capacity(names.len());
                    let mut complete = true;
                    for ident in names {
                        let Some(r) = self.message_ref(ident, Role::Outcome) else {
                            complete = false;
                            continue;
                        };
                        if let Some(first) = events.iter().find(|m| m.id == r.id) {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::E0100,
                                    ident.span,
                                    format!("`{}` appears twice in one outcome", ident.name),
                                )
                                .with_primary_message("repeated here")
                                .with_label(first.span, "first named here"),
                            );
                            continue;
                        }
                        events.push(r);
                    }
                    if !complete && events.is_empty() {
                        // Nothing resolved: leaving an empty outcome would
                        // read as `none`.
                        continue;
                    }
                    Outcome {
                        events,
                        span: *span,
                    }
                }
            };
            let same = |a: &Outcome, b: &Outcome| {
                a.events.len() == b.events.len() && a.ids().all(|id| b.ids().any(|x| x == id))
            };
            if let Some(first) = result.iter().find(|prev| same(prev, &outcome)) {
                self.diags.push(
                    Diagnostic::new(Code::E0100, outcome.span, "this outcome is listed twice")
                        .with_primary_message("repeated here")
                        .with_label(first.span, "first listed here")
                        .with_help("each outcome of a reaction must differ from the others"),
                );
                continue;
            }
            result.push(outcome);
        }
        result
    }

    fn compensated(&mut self, ident: &ast::Ident) -> Option<Ref<MessageId>> {
        self.message_ref(ident, Role::Compensates)
    }

    fn check_key_shadowing(&mut self, key_span: Option<Span>) {
        let Some(key) = &self.spec.key else { return };
        let mut found = Vec::new();
        for m in &self.spec.messages {
            for f in &m.fields {
                if f.name.text == key.name.text {
                    found.push(
                        Diagnostic::new(
                            Code::E0102,
                            f.name.span,
                            format!(
                                "{} `{}` has a field named like the key `{}`",
                                m.kind.as_str(),
                                m.name.text,
                                key.name.text
                            ),
                        )
                        .with_primary_message("this field")
                        .with_label(key_span.unwrap_or(key.span), "the key is declared here")
                        .with_help(
                            "every event and command already carries the key; remove the field",
                        ),
                    );
                }
            }
        }
        self.diags.extend(found);
    }

    /// `@http` paths may name the key, and only the key; two commands
    /// cannot answer the same method and path.
    fn check_http_paths(&mut self) {
        let key = self.spec.key.as_ref().map(|k| k.name.text.as_str());
        let mut found: Vec<Diagnostic> = self
            .spec
            .messages
            .iter()
            .filter_map(|m| m.http.as_ref())
            .filter_map(|route| check_http_path(&route.path, route.span, key))
            .collect();
        let mut seen: HashMap<(HttpMethod, &str), (&str, Span)> = HashMap::default();
        for m in &self.spec.messages {
            let Some(route) = &m.http else { continue };
            let path = route.path.as_str();
            if let Some((other, first)) = seen.get(&(route.method, path)) {
                found.push(
                    Diagnostic::new(
                        Code::E0103,
                        route.span,
                        format!(
                            "`{} {}` is already the route of `{other}`",
                            route.method.as_str(),
                            route.path
                        ),
                    )
                    .with_primary_message("same method and path")
                    .with_label(*first, "first used here")
                    .with_help("give each command its own method or path"),
                );
            } else {
                seen.insert((route.method, path), (&m.name.text, route.span));
            }
        }
        self.diags.extend(found);
    }

    fn check_command_handlers(&mut self) {
        let mut handlers: Vec<Vec<(ParticipantId, Span)>> =
            vec![Vec::new(); self.spec.messages.len()];
        for r in &self.spec.reactions {
            for t in &r.trigger.messages {
                if self.kinds[t.id.index()] != MessageKind::Command {
                    continue;
                }
                let list = &mut handlers[t.id.index()];
                if !list.iter().any(|(p, _)| *p == r.participant) {
                    list.push((r.participant, t.span));
                }
            }
        }
        let mut any_command = false;
        for (i, m) in self.spec.messages.iter().enumerate() {
            if !m.is_command() {
                continue;
            }
            any_command = true;
            let list = &handlers[i];
            if list.is_empty() {
                self.diags.push(
                    Diagnostic::new(
                        Code::E0105,
                        m.name.span,
                        format!("command `{}` is handled by no participant", m.name.text),
                    )
                    .with_primary_message("nobody reacts to this command")
                    .with_help(format!(
                        "add `on {} -> …` to the participant that should handle it",
                        m.name.text
                    )),
                );
            } else if list.len() > 1 {
                let mut d = Diagnostic::new(
                    Code::E0105,
                    m.name.span,
                    format!(
                        "command `{}` is handled by {} participants",
                        m.name.text,
                        list.len()
                    ),
                )
                .with_primary_message("a command has exactly one handler")
                .with_help(
                    "let one participant handle the command and emit an event the others react to",
                );
                for (p, span) in list {
                    d = d.with_label(
                        *span,
                        format!(
                            "handled by `{}`",
                            self.spec.participants[p.index()].name.text
                        ),
                    );
                }
                self.diags.push(d);
            }
        }
        if !any_command {
            self.diags.push(
                Diagnostic::new(
                    Code::E0107,
                    self.spec.name.span,
                    format!("choreography `{}` has no command", self.spec.name.text),
                )
                .with_primary_message("nothing can start an instance")
                .with_help("an instance starts with a command: declare one, e.g. `command PlaceOrder { … }`, and a reaction to it"),
            );
        }
    }

    fn check_external_emitted(&mut self) {
        if !self.any_external {
            return;
        }
        let mut found = Vec::new();
        for r in &self.spec.reactions {
            for o in r.outcomes() {
                for e in &o.events {
                    let m = &self.spec.messages[e.id.index()];
                    if let Some(ext) = m.external {
                        found.push(
                            Diagnostic::new(
                                Code::E0103,
                                e.span,
                                format!(
                                    "`{}` is `@external`, but `{}` emits it",
                                    m.name.text,
                                    self.spec.participants[r.participant.index()].name.text
                                ),
                            )
                            .with_primary_message("emitted here")
                            .with_label(ext, "declared external here")
                            .with_help("an external event comes from outside the choreography; remove `@external` or this outcome"),
                        );
                    }
                }
            }
        }
        self.diags.extend(found);
    }

    fn check_reaction_clashes(&mut self) {
        let mut found = Vec::new();
        for p in &self.spec.participants {
            let mut alternatives: HashMap<MessageId, &Ref<MessageId>> = HashMap::default();
            let mut joins: Vec<(Vec<MessageId>, Span)> = Vec::new();
            for rid in &p.reactions {
                let r = &self.spec.reactions[rid.index()];
                if r.trigger.is_join() {
                    let mut set: Vec<MessageId> = r.trigger.ids().collect();
                    set.sort();
                    if let Some((_, first)) = joins.iter().find(|(s, _)| *s == set) {
                        found.push(
                            Diagnostic::new(
                                Code::E0100,
                                r.trigger.span,
                                format!(
                                    "participant `{}` joins on the same events twice",
                                    p.name.text
                                ),
                            )
                            .with_primary_message("second join")
                            .with_label(*first, "first join on these events")
                            .with_help("merge the two reactions into one"),
                        );
                    } else {
                        joins.push((set, r.trigger.span));
                    }
                    continue;
                }
                for t in &r.trigger.messages {
                    if let Some(first) = alternatives.get(&t.id) {
                        found.push(
                            Diagnostic::new(
                                Code::E0100,
                                t.span,
                                format!(
                                    "participant `{}` reacts to `{}` twice",
                                    p.name.text,
                                    self.spec.messages[t.id.index()].name.text
                                ),
                            )
                            .with_primary_message("second reaction")
                            .with_label(first.span, "first reaction")
                            .with_help("a participant reacts to an event once; merge the outcomes into one reaction"),
                        );
                    } else {
                        alternatives.insert(t.id, t);
                    }
                }
            }
        }
        self.diags.extend(found);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Trigger,
    Outcome,
    Compensates,
}

/// Checks an `@http` path: it starts with `/`, and each of its segments is
/// either literal text or the key's own placeholder (at most once), so
/// that the router takes every path `check` passes.
pub(super) fn check_http_path(path: &str, span: Span, key: Option<&str>) -> Option<Diagnostic> {
    let bad = |message: String, help: &str| {
        Some(
            Diagnostic::new(Code::E0103, span, message)
                .with_primary_message("in this `@http`")
                .with_help(help.to_string()),
        )
    };
    let Some(rest) = path.strip_prefix('/') else {
        return bad(
            format!("the path `{path}` does not start with `/`"),
            "write an absolute path such as `\"/orders\"`",
        );
    };
    let placeholder = key.map(|k| format!("{{{k}}}"));
    let mut named_key = false;
    // `/` alone is the root; anything longer has no empty segment.
    let segments = rest.split('/').filter(|_| !rest.is_empty());
    for segment in segments {
        if segment.is_empty() {
            return bad(
                format!("the path `{path}` has an empty segment"),
                "write no `//` and no `/` at the end, as in `\"/orders/{key}\"`",
            );
        }
        if placeholder.as_deref() == Some(segment) {
            if named_key {
                return bad(
                    format!("the path `{path}` names the key twice"),
                    "name the key once",
                );
            }
            named_key = true;
            continue;
        }
        if let Some(open) = segment.find(['{', '}']) {
            let message = match segment[open..].strip_prefix('{') {
                None => format!("unbalanced `}}` in the path `{path}`"),
                Some(after) => match after.find('}') {
                    None => format!("unclosed `{{` in the path `{path}`"),
                    Some(close) if key.is_some_and(|k| k != &after[..close]) => format!(
                        "the path `{path}` names `{{{}}}`, which is not the key",
                        &after[..close]
                    ),
                    Some(_) => format!(
                        "the segment `{segment}` of the path `{path}` is more than the key's placeholder"
                    ),
                },
            };
            let help = match key {
                Some(k) => format!(
                    "the only placeholder allowed is the key, `{{{k}}}`, as a whole segment"
                ),
                None => "placeholders are written `{key}`".to_string(),
            };
            return bad(message, &help);
        }
        if let Some(sigil) = segment.chars().next().filter(|c| matches!(c, ':' | '*')) {
            return bad(
                format!("the segment `{segment}` of the path `{path}` starts with `{sigil}`"),
                &format!(
                    "placeholders are written `{{{}}}`; other segments are literal text",
                    key.unwrap_or("key")
                ),
            );
        }
        if segment == "." || segment == ".." {
            return bad(
                format!("the path `{path}` has a `{segment}` segment"),
                "clients resolve `.` and `..` away; write the path without them",
            );
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()+,;=@".contains(*c)))
        {
            return bad(
                format!("the path `{path}` holds {c:?}, which a URL path cannot hold as it is"),
                "literal segments are letters, digits and `-._~!$&'()+,;=@`",
            );
        }
    }
    None
}
