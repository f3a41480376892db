//! Redis: an ACL file (Redis 7), one `user` line per participant, one for
//! the ingress and one for the admin, with selectors on the keys each
//! reads, acks and writes.
//!
//! What choreo-runtime does on Redis, and so what a participant is
//! allowed (runtime/src/broker/redis.rs, runtime/src/store/redis.rs):
//!
//! - a topic is the stream `choreo:<topic>`; publishing is `XADD` (with
//!   `?dedup=`, a script that also keeps hashes `choreo:dedup:<topic>:*`),
//!   so a participant may only write (`%W~`) the streams of its outcomes
//!   and of the dead letters of what it reads;
//! - reading is a consumer group per stream: `XGROUP CREATE … MKSTREAM`,
//!   `XREADGROUP`, `XACK`, `XAUTOCLAIM`, `XPENDING`, `XCLAIM`, `XINFO`,
//!   and a script that runs `XGROUP DELCONSUMER`; these change the
//!   group's pending list, so the streams it reads are `%RW~`;
//! - the stores are keys `<prefix>choreo:{inbox,join,bound}:<scope>:…`
//!   written by scripts (`SET`, `GET`, `DEL`, `HSETNX`, `HMGET`, `INCR`,
//!   `PEXPIRE`) and read with `MGET`; a participant has only its
//!   reactions' scopes.
//!
//! Redis checks the commands a script runs against the caller's rules,
//! so the scripts' commands are allowed too, on the same keys.

use super::names::{
    glob_escape, redis_dedup_pattern, redis_store_pattern, redis_stream, REDIS_KEY_PREFIX,
};
use super::{Usage, ADMIN_USER, INGRESS_USER};
use serde::Serialize;

/// Commands and the keys they may touch: a user's root rules or one of
/// its selectors. A command runs if the root or one selector allows it
/// with every key it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisRules {
    /// The commands (`+xadd`, `+xgroup|create`), after `-@all`.
    pub commands: Vec<String>,
    /// Key patterns they may read and write (`%RW~`).
    pub read_write: Vec<String>,
    /// Key patterns they may only write (`%W~`).
    pub write: Vec<String>,
}

/// One user's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisUser {
    /// The user name.
    pub name: String,
    /// The root rules: reading its triggers' streams in its group.
    pub root: RedisRules,
    /// Selectors: publishing (`XADD` on its outcomes only, which the
    /// streams it reads, writable for their groups, must not get) and the
    /// stores.
    pub selectors: Vec<RedisRules>,
}

/// The users of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedisAcl {
    /// Per participant in the spec's order, then the ingress and the admin.
    pub users: Vec<RedisUser>,
}

/// What a connection of the runtime runs besides its work.
const CONNECTION: &[&str] = &["+ping", "+client|id", "+client|unblock"];

/// Scripts: the publish with deduplication, the stores, a consumer's
/// removal from its group.
const SCRIPTS: &[&str] = &["+evalsha", "+eval", "+script|load"];

/// Publishing, also by the deduplicating script.
const PUBLISHING: &[&str] = &["+xadd", "+time", "+hexists", "+hsetnx", "+hdel", "+pexpire"];

/// Reading in a consumer group.
const READING: &[&str] = &[
    "+xgroup|create",
    "+xgroup|delconsumer",
    "+xreadgroup",
    "+xack",
    "+xautoclaim",
    "+xclaim",
    "+xpending",
    "+xinfo|groups",
    "+xinfo|stream",
];

/// The stores' commands, most of them run by scripts.
const STORES: &[&str] = &[
    "+set", "+get", "+mget", "+del", "+hsetnx", "+hmget", "+incr", "+pexpire",
];

/// A `@bounded` reaction's counter also keeps the set of firings it
/// counted, to count each once.
const BOUNDED: &[&str] = &["+sadd", "+sismember"];

fn commands(groups: &[&[&str]]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|c| (*c).to_owned())
        .collect()
}

/// Publishing `topics`: `XADD` on their streams, and the deduplicating
/// script's hashes.
fn publishing<'a>(
    key_prefix: &str,
    topics: impl Iterator<Item = &'a String> + Clone,
) -> RedisRules {
    RedisRules {
        commands: commands(&[SCRIPTS, PUBLISHING]),
        read_write: topics
            .clone()
            .map(|t| redis_dedup_pattern(key_prefix, t))
            .collect(),
        write: topics
            .map(|t| glob_escape(&redis_stream(key_prefix, t)))
            .collect(),
    }
}

/// Reading `topics` in a consumer group.
fn reading<'a>(key_prefix: &str, topics: impl Iterator<Item = &'a String>) -> RedisRules {
    RedisRules {
        commands: commands(&[CONNECTION, SCRIPTS, READING]),
        read_write: topics
            .map(|t| glob_escape(&redis_stream(key_prefix, t)))
            .collect(),
        write: Vec::new(),
    }
}

impl RedisAcl {
    /// The users of `usage`, on streams under `key_prefix` (the broker's,
    /// `choreo:` unless its URL sets another).
    pub fn of(usage: &Usage, key_prefix: &str) -> RedisAcl {
        let prefix = &usage.deployment.prefix;
        let mut users = Vec::new();
        for p in &usage.participants {
            let mut written: Vec<&String> = p
                .emits
                .iter()
                .chain(&p.dead_letters)
                .chain(std::iter::once(&p.progress))
                .collect();
            written.sort();
            let bounded = p.scopes.iter().any(|s| s.bounded);
            let stores = RedisRules {
                commands: commands(if bounded {
                    &[SCRIPTS, STORES, BOUNDED]
                } else {
                    &[SCRIPTS, STORES]
                }),
                read_write: p
                    .scopes
                    .iter()
                    .flat_map(|s| {
                        let mut kept = vec![redis_store_pattern(prefix, "inbox", &s.name)];
                        if s.join {
                            kept.push(redis_store_pattern(prefix, "join", &s.name));
                        }
                        if s.bounded {
                            kept.push(redis_store_pattern(prefix, "bound", &s.name));
                            kept.push(redis_store_pattern(prefix, "fired", &s.name));
                        }
                        kept
                    })
                    .collect(),
                write: Vec::new(),
            };
            users.push(RedisUser {
                name: p.name.clone(),
                root: reading(key_prefix, p.reads.iter()),
                selectors: vec![publishing(key_prefix, written.into_iter()), stores],
            });
        }
        let ingress = &usage.ingress;
        users.push(RedisUser {
            name: INGRESS_USER.to_owned(),
            root: reading(key_prefix, ingress.follows.iter()),
            selectors: vec![publishing(key_prefix, ingress.commands.iter())],
        });
        users.push(RedisUser {
            name: ADMIN_USER.to_owned(),
            root: RedisRules {
                commands: vec!["+@all".to_owned()],
                read_write: vec!["*".to_owned()],
                write: Vec::new(),
            },
            selectors: Vec::new(),
        });
        RedisAcl { users }
    }

    /// [`RedisAcl::of`] on the broker's default key prefix.
    pub fn with_default_keys(usage: &Usage) -> RedisAcl {
        RedisAcl::of(usage, REDIS_KEY_PREFIX)
    }

    /// The ACL file (`aclfile` in redis.conf, or `redis-server --aclfile`).
    /// `password` gives a user's password as the SHA-256 hex of it, written
    /// as `#<hash>`; a user without one gets none and cannot log in until
    /// one is set (`ACL SETUSER <user> >…`). The default user is turned off.
    pub fn render(&self, password: impl Fn(&str) -> Option<String>) -> String {
        // An ACL file has no comments: every line is a user.
        let mut out = String::new();
        out.push_str("user default off resetkeys resetchannels -@all\n");
        for u in &self.users {
            let mut line = format!("user {} on", u.name);
            match password(&u.name) {
                Some(hash) => line.push_str(&format!(" #{hash}")),
                None => line.push_str(" resetpass"),
            }
            line.push_str(" resetkeys resetchannels -@all");
            line.push_str(&rules(&u.root));
            for s in &u.selectors {
                line.push_str(" (");
                line.push_str(rules(s).trim_start());
                line.push(')');
            }
            if u.name == ADMIN_USER {
                line.push_str(" &*");
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// How an ACL file holds `password`: the hex of its SHA-256 (written as
/// `#<hash>`).
pub fn password_hash(password: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rules as ACL words, each after a space.
fn rules(r: &RedisRules) -> String {
    let mut out = String::new();
    for c in &r.commands {
        out.push(' ');
        out.push_str(c);
    }
    for k in &r.read_write {
        out.push_str(&format!(" %RW~{k}"));
    }
    for k in &r.write {
        out.push_str(&format!(" %W~{k}"));
    }
    out
}
