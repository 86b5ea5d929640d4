//! Twilio: the account, messages and calls.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::ids::{hex, rfc2822_now};
use crate::plumbing::{credential, Answer, Call, Credential, Form, Reply};
use crate::world::World;
use crate::{twilio_account_sid, twilio_auth_token};

/// Twilio's simulated SMS price: 0.0079 USD per segment, in units of 1e-5 USD.
const TWILIO_PRICE_PER_SEGMENT: i64 = 790;
/// Twilio's simulated outbound call price: 0.014 USD per minute, in units of 1e-5 USD.
const TWILIO_PRICE_PER_CALL_MINUTE: i64 = 1_400;

pub(crate) struct Message {
    /// The message resource as last answered.
    json: Value,
    segments: i64,
}

pub(crate) fn twilio(world: &mut World, call: &Call) -> Reply {
    let reply = match twilio_auth(call) {
        Ok(()) => twilio_route(world, call).unwrap_or_else(|error| error),
        Err(reply) => reply,
    };
    reply.with("twilio-request-id", format!("RQ{}", hex(32)))
}

fn twilio_auth(call: &Call) -> Result<(), Reply> {
    let credentials_ok = matches!(
        credential(call.headers),
        Credential::Basic(user, password)
            if user == twilio_account_sid() && password == twilio_auth_token()
    );
    let segments = call.segments();
    let path_account = match segments.as_slice() {
        ["2010-04-01", "Accounts", sid, ..] => Some(sid.strip_suffix(".json").unwrap_or(sid)),
        _ => None,
    };
    if credentials_ok && path_account.is_none_or(|sid| sid == twilio_account_sid()) {
        Ok(())
    } else {
        Err(twilio_error(401, 20003, "Authenticate")
            .with("www-authenticate", "Basic realm=\"Twilio API\""))
    }
}

pub(crate) fn twilio_error_body(status: u16, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::new(status_code, twilio_error_body(status, code, message))
}

fn twilio_not_found(path: &str) -> Reply {
    twilio_error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn twilio_route(world: &mut World, call: &Call) -> Answer {
    let form = Form::parse(call.body);
    match (call.method.as_str(), call.segments().as_slice()) {
        ("GET", ["2010-04-01", "Accounts", sid]) if sid.ends_with(".json") => {
            Ok(Reply::ok(twilio_account()))
        }
        ("POST", ["2010-04-01", "Accounts", _, "Messages.json"]) => message_create(world, &form),
        ("POST", ["2010-04-01", "Accounts", _, "Calls.json"]) => call_create(world, &form),
        ("GET", ["2010-04-01", "Accounts", _, "Calls", file]) => {
            let sid = file.strip_suffix(".json").unwrap_or(file);
            call_fetch(world, sid).ok_or_else(|| twilio_not_found(call.path))
        }
        ("GET", ["2010-04-01", "Accounts", _, "Messages", file]) => {
            let sid = file.strip_suffix(".json").unwrap_or(file);
            message_fetch(world, sid).ok_or_else(|| twilio_not_found(call.path))
        }
        _ => Err(twilio_not_found(call.path)),
    }
}

fn twilio_account() -> Value {
    let base = format!("/2010-04-01/Accounts/{}", twilio_account_sid());
    let now = rfc2822_now();
    json!({
        "sid": twilio_account_sid(),
        "owner_account_sid": twilio_account_sid(),
        "friendly_name": "vendorgate simulator",
        "status": "active",
        "type": "Full",
        "date_created": now,
        "date_updated": now,
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "balance": format!("{base}/Balance.json"),
            "calls": format!("{base}/Calls.json"),
            "messages": format!("{base}/Messages.json"),
        },
    })
}

fn message_create(world: &mut World, form: &Form) -> Answer {
    let to = form
        .non_empty("To")
        .ok_or_else(|| twilio_error(400, 21604, "A 'To' phone number is required."))?;
    let from = form.non_empty("From");
    let service = form.non_empty("MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(twilio_error(
            400,
            21603,
            "A 'From' phone number is required.",
        ));
    }
    let body = form.get("Body").unwrap_or("");
    let num_media = form.count("MediaUrl");
    if body.is_empty() && num_media == 0 && form.non_empty("ContentSid").is_none() {
        return Err(twilio_error(400, 21602, "Message body is required."));
    }
    if body.chars().count() > 1600 {
        return Err(twilio_error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if !is_phone_address(to) {
        let message = format!("The 'To' number {to} is not a valid phone number.");
        return Err(twilio_error(400, 21211, &message));
    }
    let sid = format!("SM{}", hex(32));
    let segments = sms_segments(body);
    let base = format!(
        "/2010-04-01/Accounts/{}/Messages/{sid}",
        twilio_account_sid()
    );
    let now = rfc2822_now();
    // Through a Messaging Service no sender is assigned yet, so Twilio reports 0 segments.
    let (status, num_segments) = match service {
        Some(_) => ("accepted", 0),
        None => ("queued", segments),
    };
    let json = json!({
        "account_sid": twilio_account_sid(),
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": num_media.to_string(),
        "num_segments": num_segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "media": format!("{base}/Media.json"),
            "feedback": format!("{base}/Feedback.json"),
        },
        "to": to,
        "uri": format!("{base}.json"),
    });
    let reply = Reply::new(StatusCode::CREATED, json.clone());
    world.messages.insert(sid, Message { json, segments });
    Ok(reply)
}

/// An outbound call: queued, with no price until it has ended.
fn call_create(world: &mut World, form: &Form) -> Answer {
    let to = form
        .non_empty("To")
        .ok_or_else(|| twilio_error(400, 21201, "No 'To' number is specified"))?;
    let from = form
        .non_empty("From")
        .ok_or_else(|| twilio_error(400, 21213, "No 'From' number is specified"))?;
    if ["Url", "Twiml", "ApplicationSid"]
        .iter()
        .all(|k| form.non_empty(k).is_none())
    {
        return Err(twilio_error(
            400,
            21205,
            "Either Url, Twiml or ApplicationSid is required",
        ));
    }
    if !is_phone_address(to) && !to.starts_with("client:") {
        let message = format!("The phone number you are attempting to call, {to}, is not valid.");
        return Err(twilio_error(400, 13223, &message));
    }
    let sid = format!("CA{}", hex(32));
    let base = format!("/2010-04-01/Accounts/{}/Calls/{sid}", twilio_account_sid());
    let now = rfc2822_now();
    let json = json!({
        "account_sid": twilio_account_sid(),
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": from,
        "from_formatted": from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {
            "notifications": format!("{base}/Notifications.json"),
            "recordings": format!("{base}/Recordings.json"),
        },
        "to": to,
        "to_formatted": to,
        "trunk_sid": null,
        "uri": format!("{base}.json"),
    });
    world.calls.insert(sid, json.clone());
    Ok(Reply::new(StatusCode::CREATED, json))
}

/// The call, ended after one minute and priced from the first fetch on.
fn call_fetch(world: &mut World, sid: &str) -> Option<Reply> {
    let call = world.calls.get_mut(sid)?;
    if call["status"] != "completed" {
        let now = rfc2822_now();
        call["status"] = json!("completed");
        call["duration"] = json!("60");
        call["price"] = json!(format!("-0.{TWILIO_PRICE_PER_CALL_MINUTE:05}"));
        call["start_time"] = json!(now);
        call["end_time"] = json!(now);
        call["date_updated"] = json!(now);
    }
    Some(Reply::ok(call.clone()))
}

/// The message, delivered and priced from the first fetch on.
fn message_fetch(world: &mut World, sid: &str) -> Option<Reply> {
    let message = world.messages.get_mut(sid)?;
    if message.json["status"] != "delivered" {
        let now = rfc2822_now();
        let json = &mut message.json;
        json["status"] = json!("delivered");
        json["price"] = json!(twilio_price(message.segments));
        json["num_segments"] = json!(message.segments.to_string());
        json["date_sent"] = json!(now);
        json["date_updated"] = json!(now);
        if json["from"].is_null() {
            json["from"] = json!("+15005550006");
        }
    }
    Some(Reply::ok(message.json.clone()))
}

/// `-(0.0079 × segments)` with five decimals, e.g. `-0.00790`.
fn twilio_price(segments: i64) -> String {
    let total = TWILIO_PRICE_PER_SEGMENT * segments;
    format!("-{}.{:05}", total / 100_000, total % 100_000)
}

/// An E.164-ish number (`+` optional, 5 to 15 digits) or a channel address like `whatsapp:+1…`.
fn is_phone_address(to: &str) -> bool {
    if to.contains(':') {
        return true;
    }
    let digits = to.strip_prefix('+').unwrap_or(to);
    (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                          ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM-7 extension characters take two septets.
const GSM7_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// SMS segments: GSM-7 160 per message / 153 per segment, else UCS-2 70 / 67 (UTF-16 units).
fn sms_segments(body: &str) -> i64 {
    let septets: Option<usize> = body
        .chars()
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (units, single, per_segment) = match septets {
        Some(septets) => (septets, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(per_segment)
    };
    i64::try_from(segments).unwrap_or(i64::MAX)
}
