//! The syntax tree of a `.choreo` file, as written, with a span on every node.
//!
//! Nothing here is resolved: names are plain identifiers. `crate::model`
//! binds them.

use crate::source::Span;
pub use compact_str::CompactString;
pub use thin_vec::ThinVec;

/// An identifier and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The identifier. Most identifiers are short enough to be stored in
    /// place: a large spec holds a million of them, and a heap string each
    /// cost lowering, resolving and freeing the tree more than the parse.
    pub name: CompactString,
    /// Where.
    pub span: Span,
}

/// `///` doc comment lines attached to a node, one entry per line, without
/// the `///` and at most one following space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Docs {
    /// The lines.
    pub lines: ThinVec<String>,
}

impl Docs {
    /// Whether there is no doc comment.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines joined with newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A literal in an attribute argument or after `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// What kind of literal, with its value.
    pub kind: LiteralKind,
    /// Where.
    pub span: Span,
}

/// The kinds of literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiteralKind {
    /// A string, escapes already decoded.
    String(String),
    /// An unsigned integer as written (it may not fit any integer type).
    Integer(String),
    /// A duration: the digits as written and the unit.
    Duration {
        /// The digits.
        digits: String,
        /// The unit.
        unit: DurationUnit,
    },
    /// A bare identifier such as `POST` or `failure`.
    Ident(String),
}

impl LiteralKind {
    /// How the kind is called in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            LiteralKind::String(_) => "a string",
            LiteralKind::Integer(_) => "an integer",
            LiteralKind::Duration { .. } => "a duration",
            LiteralKind::Ident(_) => "an identifier",
        }
    }
}

/// The unit of a duration literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// `ms`
    Millis,
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
}

impl DurationUnit {
    /// Milliseconds in one unit.
    pub fn millis(self) -> u64 {
        match self {
            DurationUnit::Millis => 1,
            DurationUnit::Seconds => 1_000,
            DurationUnit::Minutes => 60_000,
            DurationUnit::Hours => 3_600_000,
        }
    }
}

/// One attribute argument: positional, or `name = value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrArg {
    /// A bare literal.
    Positional(Literal),
    /// `name = literal`.
    Named {
        /// The argument name.
        name: Ident,
        /// Its value.
        value: Literal,
    },
}

impl AttrArg {
    /// Where the argument was written.
    pub fn span(&self) -> Span {
        match self {
            AttrArg::Positional(lit) => lit.span,
            AttrArg::Named { name, value } => name.span.to(value.span),
        }
    }
}

/// `@name` or `@name(args)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute's name, without `@`.
    pub name: Ident,
    /// The arguments; `None` when there were no parentheses.
    pub args: Option<Vec<AttrArg>>,
    /// The whole attribute.
    pub span: Span,
}

/// The doc comments and attributes written before a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefix {
    /// Doc comment lines.
    pub docs: Docs,
    /// Attributes, in order.
    pub attrs: ThinVec<Attribute>,
}

/// A parsed file: one choreography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The choreography.
    pub choreography: Choreography,
    /// Attributes after the choreography, which qualify nothing.
    pub trailing_attrs: ThinVec<Attribute>,
}

/// `choreography Name { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choreography {
    /// Docs and attributes before it.
    pub prefix: Prefix,
    /// Its name.
    pub name: Ident,
    /// Its items, in order.
    pub items: Vec<Item>,
    /// Attributes before the closing brace, which qualify nothing.
    pub trailing_attrs: ThinVec<Attribute>,
    /// The whole choreography.
    pub span: Span,
}

/// One item with its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Docs and attributes before it.
    pub prefix: Prefix,
    /// What it is.
    pub kind: ItemKind,
    /// The keyword that introduces it.
    pub keyword_span: Span,
    /// The whole item.
    pub span: Span,
}

/// The kinds of item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// `version "…"`.
    Version(Literal),
    /// `key name: Type`.
    Key {
        /// The key's name.
        name: Ident,
        /// Its type.
        ty: TypeExpr,
    },
    /// `type Name { fields }`.
    Type(Record),
    /// `enum Name { variants }`.
    Enum {
        /// The enum's name.
        name: Ident,
        /// Its variants.
        variants: Vec<Variant>,
        /// Attributes before the closing brace, which qualify nothing.
        trailing_attrs: ThinVec<Attribute>,
    },
    /// `command Name { fields }`.
    Command(Record),
    /// `event Name { fields }`.
    Event(Record),
    /// `participant Name { reactions }`.
    Participant {
        /// The participant's name.
        name: Ident,
        /// Its reactions.
        reactions: Vec<Reaction>,
        /// Attributes before the closing brace, which qualify nothing.
        trailing_attrs: ThinVec<Attribute>,
    },
}

/// A name with a field list: a type, command or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name.
    pub name: Ident,
    /// The fields.
    pub fields: Vec<Field>,
    /// Attributes before the closing brace, which qualify nothing.
    pub trailing_attrs: ThinVec<Attribute>,
}

/// `name: Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Docs and attributes before it.
    pub prefix: Prefix,
    /// The field's name.
    pub name: Ident,
    /// Its type.
    pub ty: TypeExpr,
    /// The whole field.
    pub span: Span,
}

/// An enum variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Docs and attributes before it.
    pub prefix: Prefix,
    /// The variant's name.
    pub name: Ident,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    /// A built-in or declared name.
    Named(Ident),
    /// `list<T>`.
    List(Box<TypeExpr>, Span),
    /// `map<string, T>`.
    Map(Box<TypeExpr>, Span),
    /// `T?`.
    Optional(Box<TypeExpr>, Span),
}

impl TypeExpr {
    /// Where the type was written.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(ident) => ident.span,
            TypeExpr::List(_, span) | TypeExpr::Map(_, span) | TypeExpr::Optional(_, span) => *span,
        }
    }
}

/// `on Trigger -> Outcomes compensates X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// Docs and attributes before it.
    pub prefix: Prefix,
    /// What it reacts to.
    pub trigger: Trigger,
    /// `None` for a sink (no `->`).
    pub outcomes: Option<Vec<Outcome>>,
    /// The event this reaction compensates, if any.
    pub compensates: Option<Ident>,
    /// The whole reaction.
    pub span: Span,
}

/// How the names of a trigger combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// `A | B`: any one of them (a single name is this kind too).
    Any,
    /// `A & B`: a join, once all have arrived.
    All,
}

/// The trigger of a reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// `|` or `&`.
    pub kind: TriggerKind,
    /// The names, in order.
    pub names: ThinVec<Ident>,
    /// The whole trigger.
    pub span: Span,
}

/// One outcome of a reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `none`.
    None(Span),
    /// `A + B`: these events together.
    Emit(ThinVec<Ident>, Span),
}

impl Outcome {
    /// Where the outcome was written.
    pub fn span(&self) -> Span {
        match self {
            Outcome::None(span) | Outcome::Emit(_, span) => *span,
        }
    }
}
