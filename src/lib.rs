//! mi-assess: finds every managed identity in a Microsoft Entra ID tenant and assesses it.
//!
//! The crate is laid out by responsibility: `host` speaks the Azure Functions custom-handler
//! protocol, `graph` and `collect` read Microsoft Graph, `arm` reads Azure Resource Manager (the
//! Azure plane), `snapshot` and `azure` hold what was read, `inventory` and `assess` turn it into
//! records (pure), `results` stores them, `pipeline` orders one run end to end, and `simulator`
//! serves a simulated tenant for the demo and tests.

pub mod arm;
pub mod assess;
pub mod auth;
pub mod changes;
pub mod classification;
pub mod cli;
pub mod collect;
pub mod config;
pub mod export;
pub mod graph;
pub mod host;
pub mod http;
pub mod model;
pub mod opengraph;
pub mod permission_map;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod resolve;
pub mod results;
pub mod rules;
pub mod simulator;
pub mod snapshot;
pub mod summary;
pub mod telemetry;
pub mod terminal;
pub mod usage;
