//! The Azure Functions host ⇄ custom handler wire contract, as Rust types.
//!
//! This module owns the shapes the host POSTs to `/{functionName}` (`{Data, Metadata}`) and the
//! shape it expects back (`{Outputs, Logs, ReturnValue}`), plus the host's encoding quirks:
//! strings arrive double-encoded, timer timestamps arrive without offsets, HTTP headers arrive as
//! arrays. It knows nothing about Graph, storage or assessments. See
//! `../shared/reference/functions-custom-handler.md` §1–§2 for the source of every rule here.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{OffsetDateTime, PrimitiveDateTime, format_description::well_known::Rfc3339};

/// Why an invocation envelope could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The body is not the JSON object the host sends.
    #[error("invocation body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// A binding the function needs is missing from `Data`.
    #[error("binding `{0}` is missing from Data")]
    MissingBinding(String),
    /// A binding is present but has the wrong shape.
    #[error("binding `{binding}` is malformed: {reason}")]
    MalformedBinding {
        /// The binding name from function.json.
        binding: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// The envelope the host POSTs for every non-forwarded invocation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeRequest {
    /// One entry per input binding, keyed by the binding `name` in function.json.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// Trigger metadata: scalar values double-encoded, objects plain, plus `sys`.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl InvokeRequest {
    /// Parses the raw body the host sent.
    pub fn from_slice(body: &[u8]) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_slice(body).map_err(ProtocolError::NotJson)?;
        if !value.is_object() {
            return Err(ProtocolError::MalformedBinding {
                binding: "(envelope)".into(),
                reason: "the envelope must be a JSON object".into(),
            });
        }
        serde_json::from_value(value).map_err(ProtocolError::NotJson)
    }

    /// Returns the raw value of one input binding.
    pub fn binding(&self, name: &str) -> Result<&Value, ProtocolError> {
        self.data
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| ProtocolError::MissingBinding(name.to_owned()))
    }

    /// Decodes an HTTP trigger binding (`req`).
    pub fn http_request(&self, name: &str) -> Result<HttpRequestData, ProtocolError> {
        let raw = self.binding(name)?;
        serde_json::from_value(raw.clone()).map_err(|e| ProtocolError::MalformedBinding {
            binding: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Decodes a timer trigger binding.
    pub fn timer(&self, name: &str) -> Result<TimerInfo, ProtocolError> {
        let raw = self.binding(name)?;
        serde_json::from_value(raw.clone()).map_err(|e| ProtocolError::MalformedBinding {
            binding: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Decodes a queue trigger binding whose message is a JSON object.
    ///
    /// The host sends string messages double-encoded (`"\"{\\\"a\\\":1}\""`); this accepts that,
    /// a singly encoded string, and a plain object.
    pub fn queue_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<T, ProtocolError> {
        let raw = self.binding(name)?;
        let malformed = |reason: String| ProtocolError::MalformedBinding {
            binding: name.to_owned(),
            reason,
        };
        let mut value = raw.clone();
        // Peel string layers (at most two are expected) until an object appears.
        for _ in 0..3 {
            match value {
                Value::String(text) => {
                    value = serde_json::from_str(&text)
                        .map_err(|e| malformed(format!("message is not JSON: {e}")))?;
                }
                _ => break,
            }
        }
        serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
    }

    /// Decodes a scalar metadata value that the host double-encodes (`"\"abc\""`, `"1"`).
    pub fn metadata_string(&self, key: &str) -> Option<String> {
        self.metadata.get(key).and_then(decode_scalar)
    }

    /// The retry attempt the host reports in `Metadata.RetryContext`, when a retry policy applies.
    pub fn retry_count(&self) -> Option<u64> {
        let retry = self.metadata.get("RetryContext")?;
        let count = retry.get("RetryCount")?;
        count
            .as_u64()
            .or_else(|| decode_scalar(count)?.parse().ok())
    }
}

/// Decodes one double-encoded scalar: `"\"abc\""` → `abc`, `"1"` → `1`, `2` → `2`.
pub fn decode_scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => Some(inner),
            Ok(Value::Number(n)) => Some(n.to_string()),
            Ok(Value::Bool(b)) => Some(b.to_string()),
            _ => Some(s.clone()),
        },
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `req` object of a non-forwarded HTTP trigger (`HttpRequestExtensions.GetRequestAsJObject`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpRequestData {
    /// The public URL, including `/api/…` and the query string.
    #[serde(default)]
    pub url: String,
    /// `GET`, `POST`, …
    #[serde(default)]
    pub method: String,
    /// Query parameters. Real hosts send an object; old docs show a JSON string.
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub query: BTreeMap<String, String>,
    /// Headers; each value is an array of strings.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Route parameters such as `runId`.
    #[serde(default, deserialize_with = "lenient_string_map")]
    pub params: BTreeMap<String, String>,
    /// The raw body, present only when the request had a `Content-Length` above zero.
    #[serde(default)]
    pub body: Option<String>,
}

impl HttpRequestData {
    /// The HTTP method (case-insensitive on the wire); `None` when the host sent something
    /// that is not a method token.
    pub fn method(&self) -> Option<Method> {
        Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).ok()
    }

    /// A route parameter, treating an empty value as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

fn lenient_string_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    let object = match value {
        Value::Object(map) => map,
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    Ok(object
        .into_iter()
        .filter_map(|(k, v)| decode_scalar(&v).map(|s| (k, s)))
        .collect())
}

/// The `TimerInfo` object of a timer trigger.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimerInfo {
    /// Absent or null with `useMonitor: false` and on first runs.
    #[serde(default)]
    pub schedule_status: Option<ScheduleStatus>,
    /// True when the invocation is late (for example after downtime).
    #[serde(default)]
    pub is_past_due: bool,
}

/// `TimerInfo.ScheduleStatus`; every timestamp is parsed leniently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleStatus {
    /// The previous occurrence; `0001-01-01T00:00:00` (no offset) on the first run.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub last: Option<OffsetDateTime>,
    /// The next occurrence.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub next: Option<OffsetDateTime>,
    /// When the monitor last updated the status.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub last_updated: Option<OffsetDateTime>,
}

fn lenient_timestamp<'de, D>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value
        .as_ref()
        .and_then(Value::as_str)
        .and_then(parse_host_timestamp))
}

/// Parses the timestamps the host sends: RFC 3339 with any number of fraction digits, or a
/// timestamp with no offset (read as UTC). The .NET default `0001-01-01T00:00:00` means "never"
/// and yields `None`, as does anything unparseable.
pub fn parse_host_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if text.starts_with("0001-01-01") {
        return None;
    }
    if let Ok(ts) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(ts);
    }
    // No offset: .NET writes up to 7 fraction digits.
    let format = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, &format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The reply the host expects: always `200 application/json` with this object, unless the
/// invocation failed.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeResponse {
    /// One entry per output binding, keyed by binding name.
    pub outputs: Map<String, Value>,
    /// Lines the host logs at Information level against the invocation (dropped on failure).
    pub logs: Vec<String>,
    /// Kept `null`: no function uses a `$return` binding, and an object here would be merged
    /// into the outputs.
    pub return_value: Option<Value>,
}

impl InvokeResponse {
    /// Sets an HTTP output binding.
    pub fn with_http(mut self, binding: &str, response: HttpResponseOut) -> Self {
        self.outputs
            .insert(binding.to_owned(), response.into_value());
        self
    }

    /// Sets a queue output binding to one JSON object message (never a bare string, which the
    /// host might base64-decode).
    pub fn with_queue_message(mut self, binding: &str, message: Value) -> Self {
        self.outputs.insert(binding.to_owned(), message);
        self
    }

    /// Appends a log line for the host.
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }
}

/// The `res` output of an HTTP function: `{statusCode, body, headers}` with string headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponseOut {
    /// HTTP status code returned to the caller.
    pub status_code: u16,
    /// The body, written verbatim by the host.
    pub body: String,
    /// Response headers; values must be strings.
    pub headers: BTreeMap<String, String>,
}

impl HttpResponseOut {
    /// A JSON response with the given status.
    pub fn json(status_code: u16, body: &impl Serialize) -> Self {
        let body = serde_json::to_string_pretty(body)
            .unwrap_or_else(|e| format!(r#"{{"error":"response could not be serialised: {e}"}}"#));
        let mut headers = BTreeMap::new();
        headers.insert(
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        );
        Self {
            status_code,
            body,
            headers,
        }
    }

    /// A JSON error body `{"error": {"code", "message"}}`.
    pub fn error(status_code: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(
            status_code,
            &serde_json::json!({ "error": { "code": code, "message": message.into() } }),
        )
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_owned(), value.into());
        self
    }

    fn into_value(self) -> Value {
        serde_json::json!({
            "statusCode": self.status_code,
            "body": self.body,
            "headers": self.headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_decoded_twice() {
        assert_eq!(
            decode_scalar(&Value::from("\"hello\"")).as_deref(),
            Some("hello")
        );
        assert_eq!(decode_scalar(&Value::from("1")).as_deref(), Some("1"));
        assert_eq!(decode_scalar(&Value::from(3)).as_deref(), Some("3"));
        assert_eq!(
            decode_scalar(&Value::from("plain")).as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn timestamps_are_lenient() {
        assert!(parse_host_timestamp("0001-01-01T00:00:00").is_none());
        assert!(parse_host_timestamp("0001-01-01T00:00:00.0000000").is_none());
        let with_offset = parse_host_timestamp("2022-10-11T10:52:00.003967+02:00");
        assert_eq!(with_offset.map(|t| t.hour()), Some(10));
        let seven_digits = parse_host_timestamp("2022-07-25T10:26:43.0352723Z");
        assert_eq!(seven_digits.map(|t| t.second()), Some(43));
        let no_offset = parse_host_timestamp("2024-03-01T02:00:00");
        assert_eq!(no_offset.map(|t| t.offset().is_utc()), Some(true));
        assert!(parse_host_timestamp("yesterday").is_none());
    }

    #[test]
    fn queue_messages_are_unwrapped_from_double_encoding() {
        #[derive(Deserialize)]
        struct Msg {
            a: u32,
        }
        let req = InvokeRequest::from_slice(br#"{"Data":{"m":"\"{\\\"a\\\":1}\""},"Metadata":{}}"#)
            .expect("valid envelope");
        let msg: Msg = req.queue_json("m").expect("decodes");
        assert_eq!(msg.a, 1);
        let req = InvokeRequest::from_slice(br#"{"Data":{"m":{"a":2}},"Metadata":{}}"#)
            .expect("valid envelope");
        assert_eq!(req.queue_json::<Msg>("m").expect("decodes").a, 2);
    }

    #[test]
    fn query_as_string_or_object() {
        let a: HttpRequestData =
            serde_json::from_value(serde_json::json!({"Query": "{}", "Params": {"runId": "x"}}))
                .expect("parses");
        assert!(a.query.is_empty());
        assert_eq!(a.param("runid"), Some("x"));
        let b: HttpRequestData =
            serde_json::from_value(serde_json::json!({"Query": {"k": "v"}})).expect("parses");
        assert_eq!(b.query.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn http_output_has_string_headers_and_numeric_status() {
        let resp = InvokeResponse::default()
            .with_http("res", HttpResponseOut::error(404, "NotFound", "x"));
        let res = &resp.outputs["res"];
        assert_eq!(res["statusCode"], 404);
        assert!(res["body"].is_string());
        assert!(res["headers"]["Content-Type"].is_string());
        let text = serde_json::to_value(&resp).expect("serialises");
        assert!(text.get("Outputs").is_some() && text.get("Logs").is_some());
        assert!(text.get("ReturnValue").is_some_and(Value::is_null));
    }
}
