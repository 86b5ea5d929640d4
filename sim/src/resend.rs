//! Resend: emails, batches and broadcasts.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::ids::{now, uuid};
use crate::plumbing::{credential, Answer, Call, Credential, Reply, Vendor};
use crate::resend_key;
use crate::world::{idempotent, World};

pub(crate) fn resend(world: &mut World, call: &Call) -> Reply {
    match resend_auth(call.headers) {
        Ok(()) => idempotent(world, Vendor::Resend, call, None, resend_route),
        Err(reply) => reply,
    }
}

fn resend_auth(headers: &HeaderMap) -> Result<(), Reply> {
    match credential(headers) {
        Credential::Bearer(key) if key == resend_key() => Ok(()),
        Credential::Missing => Err(resend_error(
            401,
            "missing_api_key",
            "Missing API key in the authorization header. Include the following header in \
             the request: Authorization: Bearer YOUR_API_KEY",
        )),
        _ => Err(resend_error(403, "invalid_api_key", "API key is invalid")),
    }
}

pub(crate) fn resend_error_body(status: u16, name: &str, message: &str) -> Value {
    json!({ "statusCode": status, "message": message, "name": name })
}

pub(crate) fn resend_error(status: u16, name: &str, message: impl AsRef<str>) -> Reply {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::new(
        status_code,
        resend_error_body(status, name, message.as_ref()),
    )
}

fn resend_route(world: &mut World, call: &Call) -> Reply {
    let answer = match (call.method.as_str(), call.segments().as_slice()) {
        ("POST", ["emails"]) => send_email(world, call.body),
        ("POST", ["emails", "batch"]) => send_batch(world, call),
        ("POST", ["broadcasts"]) => broadcast_create(world, call.body),
        ("GET", ["broadcasts", id]) => world
            .broadcasts
            .get(*id)
            .map(|broadcast| Reply::ok(broadcast.clone()))
            .ok_or_else(|| resend_error(404, "not_found", "Broadcast not found")),
        ("GET", ["emails", id]) => world
            .emails
            .get(*id)
            .map(|email| Reply::ok(email.clone()))
            .ok_or_else(|| resend_error(404, "not_found", "Email not found")),
        _ => Err(resend_error(
            404,
            "not_found",
            "The requested endpoint does not exist.",
        )),
    };
    answer.unwrap_or_else(|error| error)
}

fn resend_json(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|error| {
        resend_error(
            400,
            "validation_error",
            format!("Invalid JSON body: {error}"),
        )
    })
}

fn send_email(world: &mut World, body: &[u8]) -> Answer {
    let email = resend_email(&resend_json(body)?)?;
    let id = store_email(world, email);
    Ok(Reply::ok(json!({ "id": id })))
}

fn send_batch(world: &mut World, call: &Call) -> Answer {
    let body = resend_json(call.body)?;
    let Some(items) = body.as_array() else {
        return Err(resend_error(
            422,
            "validation_error",
            "The batch body must be a JSON array of emails.",
        ));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(resend_error(
            422,
            "validation_error",
            "A batch must hold between 1 and 100 emails.",
        ));
    }
    let permissive = call
        .header("x-batch-validation")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("permissive"));
    let checked: Vec<Result<Value, Reply>> = items.iter().map(resend_email).collect();
    if !permissive {
        if let Some(Err(error)) = checked.iter().find(|result| result.is_err()) {
            return Err(error.clone());
        }
    }
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for (index, result) in checked.into_iter().enumerate() {
        match result {
            Ok(email) => data.push(json!({ "id": store_email(world, email) })),
            Err(error) => errors.push(json!({ "index": index, "message": error.body["message"] })),
        }
    }
    let mut answer = json!({ "data": data });
    if permissive {
        answer["errors"] = json!(errors);
    }
    Ok(Reply::ok(answer))
}

/// A broadcast to a segment: a draft, or queued (scheduled) when `send` is true. The answer,
/// like Resend's, holds only the id.
fn broadcast_create(world: &mut World, body: &[u8]) -> Answer {
    let input = resend_json(body)?;
    let Some(fields) = input.as_object() else {
        return Err(resend_error(
            422,
            "validation_error",
            "The body must be a JSON object.",
        ));
    };
    let text = |field: &str| {
        fields
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.trim().is_empty())
    };
    let segment = text("segment_id").or_else(|| text("audience_id"));
    for (field, value) in [
        ("segment_id", segment),
        ("from", text("from")),
        ("subject", text("subject")),
    ] {
        if value.is_none() {
            return Err(resend_error(
                422,
                "missing_required_field",
                format!("Missing `{field}` field."),
            ));
        }
    }
    let send = fields.get("send").and_then(Value::as_bool).unwrap_or(false);
    let scheduled_at = fields.get("scheduled_at").cloned().unwrap_or(Value::Null);
    let status = match (send, scheduled_at.is_null()) {
        (false, _) => "draft",
        (true, true) => "queued",
        (true, false) => "scheduled",
    };
    let id = uuid();
    let broadcast = json!({
        "object": "broadcast",
        "id": id,
        "name": fields.get("name").cloned().unwrap_or(Value::Null),
        "segment_id": segment,
        "from": text("from"),
        "subject": text("subject"),
        "reply_to": fields.get("reply_to").cloned().unwrap_or(Value::Null),
        "preview_text": fields.get("preview_text").cloned().unwrap_or(Value::Null),
        "html": fields.get("html").cloned().unwrap_or(Value::Null),
        "text": fields.get("text").cloned().unwrap_or(Value::Null),
        "status": status,
        "created_at": now().format(&Rfc3339).unwrap_or_default(),
        "scheduled_at": scheduled_at,
        "sent_at": null,
    });
    world.broadcasts.insert(id.clone(), broadcast);
    Ok(Reply::ok(json!({ "id": id })))
}

/// Validates one email and returns it as GET /emails/{id} will show it (without id yet).
fn resend_email(input: &Value) -> Result<Value, Reply> {
    let Some(fields) = input.as_object() else {
        return Err(resend_error(
            422,
            "validation_error",
            "Each email must be a JSON object.",
        ));
    };
    let missing = |field: &str| {
        resend_error(
            422,
            "missing_required_field",
            format!("Missing `{field}` field."),
        )
    };
    let text = |field: &str| {
        fields
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.trim().is_empty())
    };
    let from = text("from").ok_or_else(|| missing("from"))?;
    let to = addresses(fields, "to")?;
    if to.is_empty() {
        return Err(missing("to"));
    }
    if to.len() > 50 {
        return Err(resend_error(
            422,
            "validation_error",
            "Too many recipients in the `to` field: at most 50.",
        ));
    }
    let subject = text("subject").ok_or_else(|| missing("subject"))?;
    let list_or_null = |list: Vec<String>| {
        if list.is_empty() {
            Value::Null
        } else {
            json!(list)
        }
    };
    Ok(json!({
        "object": "email",
        "to": to,
        "from": from,
        "created_at": now().format(&Rfc3339).unwrap_or_default(),
        "subject": subject,
        "html": fields.get("html").cloned().unwrap_or(Value::Null),
        "text": fields.get("text").cloned().unwrap_or(Value::Null),
        "cc": list_or_null(addresses(fields, "cc")?),
        "bcc": list_or_null(addresses(fields, "bcc")?),
        "reply_to": list_or_null(addresses(fields, "reply_to")?),
        "last_event": "delivered",
        "scheduled_at": fields.get("scheduled_at").cloned().unwrap_or(Value::Null),
        "tags": fields.get("tags").cloned().unwrap_or(Value::Null),
    }))
}

/// A recipient field: absent, a string, or an array of strings.
fn addresses(fields: &Map<String, Value>, field: &str) -> Result<Vec<String>, Reply> {
    let invalid = || {
        resend_error(
            422,
            "validation_error",
            format!("Invalid `{field}` field: expected a string or an array of strings."),
        )
    };
    match fields.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) if one.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn store_email(world: &mut World, mut email: Value) -> String {
    let id = uuid();
    email["id"] = json!(id);
    world.emails.insert(id.clone(), email);
    id
}
