//! The core's security events (`tracing` events with target
//! `tessera::security`, such as `event = "token_theft"`) → Python's
//! `logging.getLogger("tessera.security")` at WARNING.
//!
//! Events are emitted wherever the core runs: on the calling thread with the
//! GIL held (the inline first poll), or on a runtime worker thread that has
//! no GIL, inside a call that waits with the GIL released. So the
//! [`Bridge`] subscriber never touches Python: it copies the event's fields
//! into a queue (a short critical section on a std mutex, held for nothing
//! else) and raises a flag. [`flush`] runs after every call into the core,
//! once the GIL is held again, and hands the queue to `logging` with the
//! mutex released, so a logging handler that calls Tessera again cannot
//! deadlock. An event emitted by a background task (no call in progress) is
//! logged at the end of the next call.
//!
//! Cost: every other callsite is registered as never interesting, and the
//! flag is one relaxed atomic load per call.
//!
//! Tokens: the core's events carry who and which session, never a token.
//! As a second guard, any field whose name mentions a token, key, secret,
//! password or csrf is replaced by `[redacted]`, and values are cut at 256
//! characters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The target of the core's security events.
pub(crate) const TARGET: &str = "tessera::security";
/// The Python logger they are written to.
const LOGGER: &str = "tessera.security";
/// Events kept while no call flushes them; later ones are counted and dropped.
const QUEUE_LIMIT: usize = 1000;
const VALUE_LIMIT: usize = 256;

enum FieldValue {
    Text(String),
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
}

struct Record {
    message: String,
    fields: Vec<(&'static str, FieldValue)>,
}

static QUEUE: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static PENDING: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn redacted(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "key", "secret", "password", "csrf", "cookie"]
        .iter()
        .any(|word| name.contains(word))
}

fn cut(mut text: String) -> String {
    if text.len() > VALUE_LIMIT {
        let mut end = VALUE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, FieldValue)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        let name = field.name();
        if name == "message" {
            if let FieldValue::Text(text) = value {
                self.message = cut(text);
            }
            return;
        }
        let value = if redacted(name) {
            FieldValue::Text("[redacted]".into())
        } else {
            value
        };
        self.fields.push((name, value));
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, FieldValue::Text(cut(format!("{value:?}"))));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Text(cut(value.to_owned())));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::UInt(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::Float(value));
    }
}

/// The process's `tracing` subscriber: interested in `tessera::security`
/// events (WARN and above) only.
struct Bridge;

fn wanted(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET && *metadata.level() <= tracing::Level::WARN
}

impl Subscriber for Bridge {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() && wanted(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && wanted(metadata)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        // Spans are never enabled (`enabled` answers false for them); an id
        // is still required.
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        if !wanted(event.metadata()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut queue = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= QUEUE_LIMIT {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        } else {
            queue.push(Record {
                message: fields.message,
                fields: fields.fields,
            });
        }
        drop(queue);
        PENDING.store(true, Ordering::Release);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// Installs the bridge as the process's `tracing` subscriber (module
/// import). If the process already has one (another Rust extension set it),
/// the events go there instead.
pub(crate) fn install() {
    let _ = tracing::subscriber::set_global_default(Bridge);
}

static LOGGER_OBJECT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `LogRecord` attributes an `extra` key must not replace (`logging`
/// raises `KeyError` for those).
const RESERVED: &[&str] = &[
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "message",
    "asctime",
    "taskName",
];

fn to_python<'py>(py: Python<'py>, value: &FieldValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        FieldValue::Text(t) => t.into_pyobject(py)?.into_any(),
        FieldValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        FieldValue::Int(i) => i.into_pyobject(py)?.into_any(),
        FieldValue::UInt(u) => u.into_pyobject(py)?.into_any(),
        FieldValue::Float(f) => f.into_pyobject(py)?.into_any(),
    })
}

fn text_of(value: &FieldValue) -> String {
    match value {
        FieldValue::Text(t) => t.clone(),
        FieldValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::UInt(u) => u.to_string(),
        FieldValue::Float(f) => f.to_string(),
    }
}

fn log(py: Python<'_>, record: &Record) -> PyResult<()> {
    let logger = LOGGER_OBJECT.get_or_try_init(py, || {
        py.import("logging")?
            .call_method1("getLogger", (LOGGER,))
            .map(Bound::unbind)
    })?;
    let extra = PyDict::new(py);
    let fields = PyDict::new(py);
    let mut message = record.message.clone();
    for (name, value) in &record.fields {
        let object = to_python(py, value)?;
        fields.set_item(*name, &object)?;
        if !RESERVED.contains(name) {
            extra.set_item(*name, &object)?;
        }
        message.push_str(&format!(" {name}={}", text_of(value)));
    }
    extra.set_item("tessera_fields", fields)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("extra", extra)?;
    // `%s` with the text as an argument: a `%` in a field is not a format.
    logger
        .bind(py)
        .call_method("warning", ("%s", message.trim_start()), Some(&kwargs))?;
    Ok(())
}

/// Writes the queued events to `logging` (the GIL is held; the queue's mutex
/// is not, while Python runs). One relaxed load when there is nothing.
pub(crate) fn flush(py: Python<'_>) {
    if !PENDING.load(Ordering::Relaxed) {
        return;
    }
    PENDING.store(false, Ordering::Relaxed);
    let records = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|p| p.into_inner()));
    for record in &records {
        if let Err(e) = log(py, record) {
            e.write_unraisable(py, None);
        }
    }
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let lost = Record {
            message: format!("{dropped} security events were dropped (queue full)"),
            fields: Vec::new(),
        };
        if let Err(e) = log(py, &lost) {
            e.write_unraisable(py, None);
        }
    }
}
