//! Remediation commands: the complete commands a finding's remediation prose gives, each in a
//! field of its own with the shell it is valid in (`remediationCommands`).
//!
//! Rules write their remediation as prose with the exact calls in it. This module reads the
//! `az …` calls back out of that prose, once, for every rule: a call ends where the prose goes
//! on (`; `, `. `, ` (`, a closing parenthesis, ` / `, ` or `, ` and `), outside quotes. A
//! call with a `<placeholder>`, an unbalanced quote or a `$` inside double quotes is a
//! template or would not survive a paste, and is left in the prose only. Every `az rest` call
//! to Microsoft Graph also gets its Microsoft Graph PowerShell form
//! (`Invoke-MgGraphRequest`), single-quoted, so it pastes into `pwsh` unchanged.

use serde::{Deserialize, Serialize};

/// The shell a remediation command is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Shell {
    /// bash (and zsh): the Azure CLI forms.
    Bash,
    /// PowerShell 7 with the Microsoft Graph PowerShell SDK: the Graph forms.
    Pwsh,
}

/// One complete command, valid when pasted into its shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationCommand {
    /// Where it runs.
    pub shell: Shell,
    /// The command line.
    pub command: String,
}

/// Where a call ends, when met outside quotes.
const ENDINGS: [&str; 6] = ["; ", ". ", " (", " / ", " or ", " and "];

/// The complete commands in a remediation text, in order, without repeats.
pub fn commands_in(prose: &str) -> Vec<RemediationCommand> {
    let mut out: Vec<RemediationCommand> = Vec::new();
    let mut push = |command: RemediationCommand| {
        if !out.contains(&command) {
            out.push(command);
        }
    };
    for start in call_starts(prose) {
        let Some(call) = call_at(&prose[start..]) else {
            continue;
        };
        if !pastes_cleanly(call) {
            continue;
        }
        push(RemediationCommand {
            shell: Shell::Bash,
            command: call.to_owned(),
        });
        if let Some(pwsh) = graph_powershell(call) {
            push(RemediationCommand {
                shell: Shell::Pwsh,
                command: pwsh,
            });
        }
    }
    out
}

/// Byte offsets where an `az ` call starts: at the start, or after a space, `(` or `:`.
fn call_starts(prose: &str) -> Vec<usize> {
    prose
        .match_indices("az ")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || matches!(prose.as_bytes()[i - 1], b' ' | b'(' | b':'))
        .collect()
}

/// The call at the start of `text`: up to the first ending outside quotes, or the end (a
/// final `.` is prose).
fn call_at(text: &str) -> Option<&str> {
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match (quote, c) {
            // `\` outside quotes escapes the next character (shell_quote's `'\''`).
            (None, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => return Some(text[..i].trim_end()),
            (None, ')') => depth -= 1,
            (None, _) => {
                if ENDINGS.iter().any(|e| text[i..].starts_with(e)) {
                    return Some(text[..i].trim_end());
                }
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    Some(text.trim_end().trim_end_matches('.'))
}

/// True when the call is complete and pastes as it reads: balanced quotes, no placeholder
/// (`<…>` anywhere, `{…}` outside quotes), no `$` that a shell would expand, and a command group
/// with at least one argument after `az`.
fn pastes_cleanly(call: &str) -> bool {
    let words: Vec<&str> = call.split_whitespace().collect();
    if words.len() < 3 || !words.iter().any(|w| w.starts_with('-')) {
        return false;
    }
    // A `<placeholder>` is a template to fill in, quoted or not.
    if call.contains('<') {
        return false;
    }
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in call.chars() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match (quote, c) {
            (None, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '$' | '`' | '\\') => return false,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '<' | '>' | '{' | '}' | '$' | '`' | '|' | '&' | ';' | '*' | '?') => {
                return false;
            }
            (None, _) => {}
        }
    }
    quote.is_none()
}

/// The Microsoft Graph PowerShell form of an `az rest` call to Graph:
/// `Invoke-MgGraphRequest -Method M -Uri '…' [-Body '…']`.
fn graph_powershell(call: &str) -> Option<String> {
    // A value with an escaped quote (`'\''`) is not read back here: no PowerShell form.
    if call.contains("\\'") {
        return None;
    }
    let rest = call.strip_prefix("az rest ")?;
    let method = value_of(rest, "--method")?;
    let url = value_of(rest, "--url")?;
    if !url.contains("/v1.0/") && !url.contains("/beta/") {
        return None;
    }
    let mut out = format!(
        "Invoke-MgGraphRequest -Method {} -Uri {}",
        method.to_ascii_uppercase(),
        pwsh_quote(&url)
    );
    if let Some(body) = value_of(rest, "--body") {
        out.push_str(&format!(
            " -Body {} -ContentType 'application/json'",
            pwsh_quote(&body)
        ));
    }
    Some(out)
}

/// The value after `flag` in an `az` call, unquoted (single or double quotes, or a bare word).
fn value_of(call: &str, flag: &str) -> Option<String> {
    let at = call.find(&format!("{flag} "))? + flag.len() + 1;
    let rest = &call[at..];
    let first = rest.chars().next()?;
    if first == '\'' || first == '"' {
        let end = rest[1..].find(first)? + 1;
        Some(rest[1..end].to_owned())
    } else {
        Some(rest.split_whitespace().next()?.to_owned())
    }
}

/// A PowerShell single-quoted string: nothing inside expands; a `'` doubles.
fn pwsh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(commands: &[RemediationCommand]) -> Vec<&str> {
        commands
            .iter()
            .filter(|c| c.shell == Shell::Bash)
            .map(|c| c.command.as_str())
            .collect()
    }

    #[test]
    fn calls_end_where_the_prose_goes_on() {
        let prose = "Remove it: az rest --method DELETE --url 'https://graph.microsoft.com/v1.0/groups/g/members/m/$ref'. Then az role assignment delete --ids \"/subscriptions/s/x\" (or narrow it); az identity delete --ids \"/a (b)\".";
        let found = commands_in(prose);
        assert_eq!(
            bash(&found),
            [
                "az rest --method DELETE --url 'https://graph.microsoft.com/v1.0/groups/g/members/m/$ref'",
                "az role assignment delete --ids \"/subscriptions/s/x\"",
                "az identity delete --ids \"/a (b)\"",
            ]
        );
        assert!(found.contains(&RemediationCommand {
            shell: Shell::Pwsh,
            command: "Invoke-MgGraphRequest -Method DELETE -Uri 'https://graph.microsoft.com/v1.0/groups/g/members/m/$ref'".into(),
        }));
    }

    #[test]
    fn templates_and_unsafe_quoting_stay_in_the_prose() {
        for prose in [
            "az identity create -g <rg> -n <name> and attach it",
            "az rest --method DELETE --url \"https://graph.microsoft.com/v1.0/x/$ref\"",
            "az webapp identity assign / az vm identity assign",
            "az rest --method GET --url 'unterminated",
            "az identity federated-credential create --subject 'repo:o/r:environment:<environment>'",
        ] {
            assert!(bash(&commands_in(prose)).is_empty(), "{prose}");
        }
    }

    #[test]
    fn an_escaped_quote_stays_inside_the_call() {
        let name = crate::model::shell_quote("it's");
        let prose = format!(
            "Delete it: az identity delete --name {name} --yes; then az rest --method GET --url {}",
            crate::model::shell_quote("https://graph.microsoft.com/v1.0/x/it's")
        );
        let found = commands_in(&prose);
        assert_eq!(
            bash(&found),
            [
                format!("az identity delete --name {name} --yes"),
                "az rest --method GET --url 'https://graph.microsoft.com/v1.0/x/it'\\''s'"
                    .to_owned(),
            ]
        );
        assert!(
            found.iter().all(|c| c.shell == Shell::Bash),
            "no PowerShell form is guessed from an escaped value"
        );
    }

    #[test]
    fn a_graph_body_becomes_a_powershell_body() {
        let call = "az rest --method POST --url 'https://graph.microsoft.com/v1.0/servicePrincipals/s/removePassword' --body '{\"keyId\":\"k\"}'";
        assert_eq!(
            graph_powershell(call).as_deref(),
            Some(
                "Invoke-MgGraphRequest -Method POST -Uri 'https://graph.microsoft.com/v1.0/servicePrincipals/s/removePassword' -Body '{\"keyId\":\"k\"}' -ContentType 'application/json'"
            )
        );
        assert_eq!(pwsh_quote("it's"), "'it''s'");
    }
}
