//! Microsoft's map from each Microsoft Graph permission to the methods and paths it allows
//! (`data/graph-permissions/permissions.json`, MIT, from `microsoftgraph/microsoft-graph-devx-content`;
//! see its SOURCES.md), read for the **Application** scheme, and what it tells about observed
//! use: the smallest set of granted permissions that covers every request an identity was seen
//! making ([`PermissionMap::cover`]), and a narrower permission where the one in use is broader
//! than the requests need.
//!
//! Path templates compare without regard to case; `{id}` and `{value}` stand for one segment or
//! key value (also inside a segment, as in `serviceprincipals(appid={value})`), and `...` for any
//! number of nested segments. Pure: the map is embedded and parsed once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

/// The embedded map, as published.
const EMBEDDED: &str = include_str!("../data/graph-permissions/permissions.json");

/// One part of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A literal segment, lower-cased, whose `{…}` placeholders (if any) stand for any text.
    Pattern(Vec<Piece>),
    /// `...`: any number of segments.
    Rest,
}

/// A piece of a segment pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Any,
}

/// A path template of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    segments: Vec<Segment>,
}

impl Template {
    fn parse(text: &str) -> Self {
        let segments = text
            .trim()
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s == "..." {
                    return Segment::Rest;
                }
                let lower = s.to_ascii_lowercase();
                let mut pieces = Vec::new();
                let mut rest = lower.as_str();
                while let Some(open) = rest.find('{') {
                    if open > 0 {
                        pieces.push(Piece::Text(rest[..open].to_owned()));
                    }
                    match rest[open..].find('}') {
                        Some(close) => {
                            pieces.push(Piece::Any);
                            rest = &rest[open + close + 1..];
                        }
                        None => {
                            pieces.push(Piece::Text(rest[open..].to_owned()));
                            rest = "";
                        }
                    }
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Text(rest.to_owned()));
                }
                Segment::Pattern(pieces)
            })
            .collect();
        Self { segments }
    }

    /// Its first segment when that is a plain literal, else "" (a placeholder or `...`).
    fn head(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Pattern(pieces)) => match pieces.as_slice() {
                [Piece::Text(text)] => text,
                _ => "",
            },
            _ => "",
        }
    }

    /// Whether `path` (lower-case segments) is one of this template's paths.
    fn matches(&self, path: &[&str]) -> bool {
        fn segment_matches(pieces: &[Piece], text: &str) -> bool {
            match pieces.split_first() {
                None => text.is_empty(),
                Some((Piece::Text(t), rest)) => {
                    text.starts_with(t.as_str()) && segment_matches(rest, &text[t.len()..])
                }
                Some((Piece::Any, rest)) => (0..=text.len())
                    .filter(|i| text.is_char_boundary(*i))
                    .any(|i| segment_matches(rest, &text[i..])),
            }
        }
        fn matches_from(segments: &[Segment], path: &[&str]) -> bool {
            match segments.split_first() {
                None => path.is_empty(),
                Some((Segment::Rest, rest)) => {
                    (0..=path.len()).any(|skip| matches_from(rest, &path[skip..]))
                }
                Some((Segment::Pattern(pieces), rest)) => match path.split_first() {
                    Some((first, remaining)) => {
                        segment_matches(pieces, first) && matches_from(rest, remaining)
                    }
                    None => false,
                },
            }
        }
        matches_from(&self.segments, path)
    }
}

/// What one permission allows with the Application scheme: per method, its templates and
/// whether it is marked least privileged for each.
#[derive(Debug, Clone, Default)]
struct Allowed {
    /// Application `privilegeLevel` (higher: more privileged), when given.
    privilege_level: Option<u8>,
    /// (method, template, least for the Application scheme).
    paths: Vec<(String, Template, bool)>,
}

/// The map, for the Application scheme.
#[derive(Debug, Default)]
pub struct PermissionMap {
    permissions: BTreeMap<String, Allowed>,
    /// Lower-case name → the map's spelling.
    names: HashMap<String, String>,
    /// (method, first segment) → the permissions with a template there marked least for the
    /// Application scheme; templates that start with a placeholder are under the empty segment.
    least_by_head: HashMap<(String, String), BTreeSet<String>>,
    /// Every literal segment of every template (lower-case): never an id.
    literals: std::collections::HashSet<String>,
}

/// Why the embedded map could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Graph permissions map (data/graph-permissions/permissions.json) cannot be read: {0}")]
pub struct MapError(String);

#[derive(Deserialize)]
struct File {
    permissions: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    schemes: BTreeMap<String, Scheme>,
    #[serde(default)]
    path_sets: Vec<PathSet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scheme {
    #[serde(default)]
    privilege_level: Option<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PathSet {
    #[serde(default)]
    scheme_keys: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    paths: BTreeMap<String, String>,
}

/// The Application scheme's key.
const APPLICATION: &str = "Application";

/// A request an identity was seen making: its method and its path template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path template, e.g. `/users/{id}/messages`.
    pub path: String,
}

/// A narrower permission that covers everything a granted one was used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrower {
    /// The granted, broader permission.
    pub granted: String,
    /// The permission that suffices.
    pub replacement: String,
    /// Why it suffices, in words.
    pub because: String,
    /// The requests it covers.
    pub requests: Vec<Request>,
}

/// What the granted permissions of one identity were used for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cover {
    /// The smallest set of granted permissions that covers every covered request, with the
    /// requests each one is needed for.
    pub used: BTreeMap<String, Vec<Request>>,
    /// Granted permissions no observed request needs.
    pub unused: Vec<String>,
    /// Requests no granted permission allows (a permission the map does not list, a delegated
    /// call, or a path the map lacks): reported, never guessed.
    pub uncovered: Vec<Request>,
    /// Permissions in use that a narrower one could replace.
    pub narrower: Vec<Narrower>,
}

impl PermissionMap {
    /// The embedded map, parsed once.
    pub fn embedded() -> Result<&'static PermissionMap, MapError> {
        static MAP: OnceLock<Result<PermissionMap, MapError>> = OnceLock::new();
        MAP.get_or_init(|| Self::parse(EMBEDDED))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Reads a map in the published format.
    pub fn parse(text: &str) -> Result<Self, MapError> {
        let file: File = serde_json::from_str(text).map_err(|e| MapError(e.to_string()))?;
        let mut map = PermissionMap::default();
        for (name, entry) in file.permissions {
            let Some(scheme) = entry.schemes.get(APPLICATION) else {
                continue;
            };
            let mut allowed = Allowed {
                privilege_level: scheme.privilege_level,
                paths: Vec::new(),
            };
            for set in entry
                .path_sets
                .iter()
                .filter(|s| s.scheme_keys.iter().any(|k| k == APPLICATION))
            {
                for (path, marker) in &set.paths {
                    // `least=DelegatedWork,Application;AlsoRequires=…`: `;`-separated pairs.
                    let least = marker
                        .split(';')
                        .filter_map(|pair| pair.trim().strip_prefix("least="))
                        .any(|schemes| schemes.split(',').any(|s| s.trim() == APPLICATION));
                    let template = Template::parse(path);
                    for method in &set.methods {
                        allowed
                            .paths
                            .push((method.to_ascii_uppercase(), template.clone(), least));
                    }
                }
            }
            for (_, template, _) in &allowed.paths {
                for segment in &template.segments {
                    if let Segment::Pattern(pieces) = segment
                        && let [Piece::Text(text)] = pieces.as_slice()
                    {
                        map.literals.insert(text.clone());
                    }
                }
            }
            for (method, template, least) in &allowed.paths {
                if *least {
                    map.least_by_head
                        .entry((method.clone(), template.head().to_owned()))
                        .or_default()
                        .insert(name.clone());
                }
            }
            map.names.insert(name.to_ascii_lowercase(), name.clone());
            map.permissions.insert(name, allowed);
        }
        if map.permissions.is_empty() {
            return Err(MapError("it lists no Application permission".into()));
        }
        Ok(map)
    }

    /// How many permissions have an Application scheme.
    pub fn len(&self) -> usize {
        self.permissions.len()
    }

    /// True when the map is empty (never for the embedded one).
    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty()
    }

    /// The map's spelling of `name` (compared without regard to case).
    pub fn name(&self, name: &str) -> Option<&str> {
        self.names
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether `permission` allows `request`, and if so whether it is marked least privileged
    /// for it (`Some(true)`).
    pub fn allows(&self, permission: &str, request: &Request) -> Option<bool> {
        let allowed = self.permissions.get(self.name(permission)?)?;
        let lower = request.path.to_ascii_lowercase();
        let path = segments(&lower);
        let method = request.method.to_ascii_uppercase();
        let mut found = None;
        for (m, template, least) in &allowed.paths {
            if *m == method && template.matches(&path) {
                if *least {
                    return Some(true);
                }
                found = Some(false);
            }
        }
        found
    }

    /// Every permission marked least privileged for `request` with the Application scheme
    /// (only those with a template under the request's first segment are tried).
    pub fn least_for(&self, request: &Request) -> Vec<&str> {
        let method = request.method.to_ascii_uppercase();
        let lower = request.path.to_ascii_lowercase();
        let head = segments(&lower)
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        let mut found: BTreeSet<&str> = BTreeSet::new();
        for key in [(method.clone(), head), (method, String::new())] {
            for permission in self.least_by_head.get(&key).into_iter().flatten() {
                if self.allows(permission, request) == Some(true) {
                    found.insert(permission);
                }
            }
        }
        found.into_iter().collect()
    }

    fn privilege(&self, permission: &str) -> u8 {
        self.name(permission)
            .and_then(|n| self.permissions.get(n))
            .and_then(|a| a.privilege_level)
            .unwrap_or(u8::MAX)
    }

    /// What `granted` was used for, given the `observed` requests: a small cover (greedy, first
    /// over the requests a granted permission is marked least privileged for, using only such
    /// permissions, then over the rest; the permission covering the most requests not yet
    /// covered first, ties to the less privileged, then by name), the
    /// granted permissions it leaves unused, the requests none covers, and narrower
    /// replacements for the permissions in use.
    pub fn cover(&self, granted: &[String], observed: &[Request]) -> Cover {
        let granted: BTreeSet<&str> = granted
            .iter()
            .filter_map(|g| self.name(g).or(Some(g.as_str())))
            .collect();
        let requests: BTreeSet<&Request> = observed.iter().collect();
        let mut can: BTreeMap<&Request, Vec<(&str, bool)>> = BTreeMap::new();
        let mut cover = Cover::default();
        for request in &requests {
            let options: Vec<(&str, bool)> = granted
                .iter()
                .filter_map(|g| self.allows(g, request).map(|least| (*g, least)))
                .collect();
            if options.is_empty() {
                cover.uncovered.push((*request).clone());
            } else {
                can.insert(request, options);
            }
        }
        // Requests some granted permission is marked least privileged for are covered by such
        // permissions first, so a broad permission held beside a narrow one comes out unused,
        // not the narrow one; what is left is covered by any granted permission.
        let least_requests: BTreeSet<&Request> = can
            .iter()
            .filter(|(_, options)| options.iter().any(|(_, least)| *least))
            .map(|(r, _)| *r)
            .collect();
        let rest: BTreeSet<&Request> = can
            .keys()
            .copied()
            .filter(|r| !least_requests.contains(r))
            .collect();
        for (mut open, least_only) in [(least_requests, true), (rest, false)] {
            while !open.is_empty() {
                let best = granted
                    .iter()
                    .map(|g| {
                        let hits: Vec<(&Request, bool)> = open
                            .iter()
                            .filter_map(|r| {
                                can[r]
                                    .iter()
                                    .find(|(p, least)| p == g && (*least || !least_only))
                                    .map(|(_, least)| (*r, *least))
                            })
                            .collect();
                        let least = hits.iter().filter(|(_, l)| *l).count();
                        (*g, hits, least)
                    })
                    .filter(|(_, hits, _)| !hits.is_empty())
                    .max_by(|a, b| {
                        a.1.len()
                            .cmp(&b.1.len())
                            .then(a.2.cmp(&b.2))
                            .then(self.privilege(b.0).cmp(&self.privilege(a.0)))
                            .then(b.0.cmp(a.0))
                    });
                let Some((permission, hits, _)) = best else {
                    break;
                };
                for (request, _) in &hits {
                    open.remove(request);
                }
                cover
                    .used
                    .entry(permission.to_owned())
                    .or_default()
                    .extend(hits.into_iter().map(|(r, _)| r.clone()));
            }
        }
        cover.unused = granted
            .iter()
            .filter(|g| !cover.used.contains_key(**g))
            .map(|g| (*g).to_owned())
            .collect();
        for (permission, requests) in &cover.used {
            if let Some(narrower) = self.narrower(permission, requests) {
                cover.narrower.push(narrower);
            }
        }
        cover
    }

    /// A permission that allows every one of `requests` and is narrower than `permission`:
    /// the read-only sibling of a read-write permission when every request only reads
    /// (`Mail.ReadWrite` → `Mail.Read`), or else the one permission Microsoft's map marks least
    /// privileged for every request, when it ranks lower than `permission`.
    fn narrower(&self, permission: &str, requests: &[Request]) -> Option<Narrower> {
        let allows_all = |q: &str| requests.iter().all(|r| self.allows(q, r).is_some());
        let only_reads = requests
            .iter()
            .all(|r| r.method.eq_ignore_ascii_case("GET"));
        if only_reads && permission.contains("ReadWrite") {
            let sibling = permission.replacen("ReadWrite", "Read", 1);
            if let Some(sibling) = self.name(&sibling)
                && allows_all(sibling)
            {
                return Some(Narrower {
                    granted: permission.to_owned(),
                    replacement: sibling.to_owned(),
                    because: format!(
                        "only reads were seen, and {sibling} allows every one of them"
                    ),
                    requests: requests.to_vec(),
                });
            }
        }
        if requests
            .iter()
            .all(|r| self.allows(permission, r) == Some(true))
        {
            return None;
        }
        let mut common: Option<BTreeSet<&str>> = None;
        for request in requests {
            let least: BTreeSet<&str> = self.least_for(request).into_iter().collect();
            common = Some(match common {
                None => least,
                Some(so_far) => so_far.intersection(&least).copied().collect(),
            });
        }
        let replacement = common?
            .into_iter()
            .filter(|q| *q != permission && self.privilege(q) < self.privilege(permission))
            .min_by_key(|q| (self.privilege(q), *q))?;
        Some(Narrower {
            granted: permission.to_owned(),
            replacement: replacement.to_owned(),
            because: format!(
                "Microsoft's permissions map marks {replacement} least privileged for every request seen"
            ),
            requests: requests.to_vec(),
        })
    }
}

/// The lower-case segments of a path template.
fn segments(path: &str) -> Vec<&str> {
    path.trim()
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// A Graph request URI as a path template: scheme, host, version and query string dropped,
/// lower-cased, ids replaced by `{id}` (GUIDs, user principal names, numbers, long opaque
/// keys) and key values by `{value}` (`serviceprincipals(appid='…')` →
/// `serviceprincipals(appid={value})`). `$batch` inner URLs (relative, without a version) come
/// out the same as the URLs they stand for.
pub fn uri_template(uri: &str) -> String {
    let mut path = uri.trim();
    if let Some(after_scheme) = path.split_once("://").map(|(_, rest)| rest) {
        path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::new();
    let mut first = true;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let lower = segment.to_ascii_lowercase();
        if first && (lower == "v1.0" || lower == "beta") {
            first = false;
            continue;
        }
        first = false;
        out.push('/');
        out.push_str(&template_segment(&lower, segment));
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

/// One lower-case segment with its ids and key values replaced.
fn template_segment(segment: &str, original: &str) -> String {
    // Key syntax: name(key='value') or name('value') or name(key=value,...).
    if let Some(open) = segment.find('(')
        && segment.ends_with(')')
    {
        let name = &segment[..open];
        let inner = &segment[open + 1..segment.len() - 1];
        if inner.is_empty() {
            return segment.to_owned();
        }
        let keys: Vec<String> = inner
            .split(',')
            .map(|part| match part.split_once('=') {
                Some((key, _)) => format!("{}={{value}}", key.trim()),
                None => "{value}".to_owned(),
            })
            .collect();
        return format!("{name}({})", keys.join(","));
    }
    if is_id(segment, original) {
        "{id}".to_owned()
    } else {
        segment.to_owned()
    }
}

/// A segment (lower-cased, and as written) that names one object rather than a collection or
/// an action: never a literal segment of the permissions map (`oauth2permissiongrants`,
/// `b2cauthenticationmethodspolicy`); a GUID, a user principal name (`@`, or `%40` encoded),
/// a number, or a long opaque key (mixed case or base64 marks, as message ids are).
fn is_id(segment: &str, original: &str) -> bool {
    if PermissionMap::embedded().is_ok_and(|map| map.literals.contains(segment)) {
        return false;
    }
    let guid = uuid::Uuid::parse_str(segment).is_ok();
    let upn = segment.contains('@') || segment.contains("%40");
    let number = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let mixed_case = original.bytes().any(|b| b.is_ascii_uppercase())
        && original.bytes().any(|b| b.is_ascii_lowercase());
    let opaque = segment.len() >= 16
        && segment.bytes().any(|b| b.is_ascii_digit())
        && !segment.contains('.')
        && (mixed_case || segment.contains(['=', '-', '_']));
    guid || upn || number || opaque
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
        }
    }

    fn request(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
        }
    }

    fn map() -> &'static PermissionMap {
        PermissionMap::embedded().expect("the embedded map parses")
    }

    /// The embedded copy parses completely: every Application permission of the file is in.
    #[test]
    fn the_embedded_map_parses_completely() {
        let file: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
        let with_application = file["permissions"]
            .as_object()
            .unwrap()
            .values()
            .filter(|p| p["schemes"].get(APPLICATION).is_some())
            .count();
        assert_eq!(map().len(), with_application);
        assert_eq!(
            with_application, 703,
            "data/graph-permissions/SOURCES.md says 703"
        );
        let licence = include_str!("../data/graph-permissions/LICENSE-MIT");
        assert!(licence.contains("MIT License") && licence.contains("Microsoft"));
        let sources = include_str!("../data/graph-permissions/SOURCES.md");
        assert!(sources.contains("microsoft-graph-devx-content"));
    }

    #[test]
    fn templates_match_ids_keys_rest_and_case() {
        let t = Template::parse("/users/{id}/messages");
        assert!(t.matches(&["users", "{id}", "messages"]));
        assert!(t.matches(&["users", "x@contoso.com", "messages"]));
        assert!(!t.matches(&["users", "{id}"]));
        let key = Template::parse("/serviceprincipals(appid={value})/addpassword");
        assert!(key.matches(&["serviceprincipals(appid={value})", "addpassword"]));
        let rest = Template::parse("/me/mailfolders/{id}/childfolders/{id}/.../messages/{id}");
        assert!(rest.matches(&[
            "me",
            "mailfolders",
            "a",
            "childfolders",
            "b",
            "messages",
            "c"
        ]));
        assert!(rest.matches(&[
            "me",
            "mailfolders",
            "a",
            "childfolders",
            "b",
            "x",
            "childfolders",
            "y",
            "messages",
            "c"
        ]));
        // The least marker, for the Application scheme; `;AlsoRequires=` pairs are read too.
        assert!(
            map()
                .least_for(&get("/applications"))
                .contains(&"Application.Read.All")
        );
        assert!(
            !map()
                .least_for(&get("/users/{id}/messages"))
                .contains(&"Mail.Read")
        );
        // The map's spelling is mixed case; requests compare without regard to it.
        assert_eq!(
            map().allows("mail.read", &get("/Users/{id}/Messages")),
            Some(false)
        );
    }

    /// A path two permissions cover, the least marker, a request none covers: the cover keeps
    /// one permission per need, reports the rest unused and the uncovered request as such.
    #[test]
    fn the_cover_is_small_and_honest() {
        let granted = vec!["Mail.Read".to_owned(), "Mail.ReadWrite".to_owned()];
        let seen = [get("/users/{id}/messages"), get("/users/{id}/mailfolders")];
        let cover = map().cover(&granted, &seen);
        assert_eq!(cover.used.len(), 1, "{cover:#?}");
        assert_eq!(cover.unused.len(), 1, "{cover:#?}");
        assert!(cover.uncovered.is_empty());

        // Writes need the write permission; the read one is unused.
        let seen = [
            request("POST", "/users/{id}/messages"),
            get("/users/{id}/messages"),
        ];
        let cover = map().cover(&granted, &seen);
        assert_eq!(cover.used.keys().collect::<Vec<_>>(), ["Mail.ReadWrite"]);
        assert_eq!(cover.unused, ["Mail.Read"]);
        assert!(cover.narrower.is_empty(), "a write was seen: {cover:#?}");

        // A request no granted permission allows is reported, never a crash.
        let cover = map().cover(&granted, &[get("/groups"), get("/no/such/api")]);
        assert_eq!(cover.uncovered.len(), 2);
        assert_eq!(cover.unused.len(), 2);
        // A granted permission the map does not know is simply unused.
        let cover = map().cover(&["Not.A.Permission".to_owned()], &[get("/users")]);
        assert_eq!(cover.unused, ["Not.A.Permission"]);
    }

    /// A broad permission held beside the least privileged one for the requests is the unused
    /// one, never the narrow one.
    #[test]
    fn a_broad_permission_beside_the_least_one_is_the_unused_one() {
        let granted = vec![
            "Directory.Read.All".to_owned(),
            "Application.Read.All".to_owned(),
        ];
        let cover = map().cover(&granted, &[get("/applications")]);
        assert_eq!(
            cover.used.keys().collect::<Vec<_>>(),
            ["Application.Read.All"]
        );
        assert_eq!(cover.unused, ["Directory.Read.All"]);
    }

    /// Mail.ReadWrite used only to read: Mail.Read suffices.
    #[test]
    fn a_read_write_permission_used_only_to_read_has_a_narrower_replacement() {
        let granted = vec!["Mail.ReadWrite".to_owned(), "User.Read.All".to_owned()];
        let seen = [
            get("/users/{id}/messages"),
            get("/users/{id}/messages/{id}"),
        ];
        let cover = map().cover(&granted, &seen);
        assert_eq!(cover.unused, ["User.Read.All"]);
        let narrower = &cover.narrower;
        assert_eq!(narrower.len(), 1, "{cover:#?}");
        assert_eq!(
            (
                narrower[0].granted.as_str(),
                narrower[0].replacement.as_str()
            ),
            ("Mail.ReadWrite", "Mail.Read")
        );
    }

    #[test]
    fn uri_templates_replace_ids_and_drop_queries() {
        for (uri, template) in [
            (
                "https://graph.microsoft.com/v1.0/users/6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/messages?$top=10&$select=subject",
                "/users/{id}/messages",
            ),
            (
                "https://graph.microsoft.com/beta/users/Adele.Vance@contoso.com/mailFolders/inbox",
                "/users/{id}/mailfolders/inbox",
            ),
            (
                "/users/x@contoso.com/messages/AAMkAGI2TG93AAA=",
                "/users/{id}/messages/{id}",
            ),
            (
                "users/6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/memberOf",
                "/users/{id}/memberof",
            ),
            (
                "https://graph.microsoft.com/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')/appRoleAssignedTo",
                "/serviceprincipals(appid={value})/approleassignedto",
            ),
            (
                "https://graph.microsoft.com/v1.0/applications('abc')",
                "/applications({value})",
            ),
            ("https://graph.microsoft.com/v1.0/$batch", "/$batch"),
            (
                "https://graph.microsoft.com/v1.0/groups/delta()",
                "/groups/delta()",
            ),
            (
                "https://graph.microsoft.com/v1.0/directoryObjects/getByIds",
                "/directoryobjects/getbyids",
            ),
            // Literal segments of the map are never ids, however long; percent-encoded UPNs are.
            (
                "https://graph.microsoft.com/v1.0/oauth2PermissionGrants?$top=999",
                "/oauth2permissiongrants",
            ),
            (
                "https://graph.microsoft.com/v1.0/policies/b2cAuthenticationMethodsPolicy",
                "/policies/b2cauthenticationmethodspolicy",
            ),
            (
                "https://graph.microsoft.com/v1.0/users/adele%40contoso.com/messages",
                "/users/{id}/messages",
            ),
            (
                "https://graph.microsoft.com/v1.0/me/messages/",
                "/me/messages",
            ),
        ] {
            assert_eq!(uri_template(uri), template, "{uri}");
        }
    }
}
