//! What a cost model reads and says: the request and answer views, the estimate before
//! forwarding, the outcome after, and the trait each vendor's model implements.

use super::prices::Pricing;
use crate::ledger::{MoneyState, Remembered};
use crate::vendors::Vendor;

/// What a cost model sees of a request: already authenticated, canonicalized and allowed.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Canonical path as the agent sent it (before any SID rewrite).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> RequestView<'a> {
    /// A form-encoded request (the cost models' tests).
    #[cfg(test)]
    pub(crate) fn form_test(method: &'a str, path: &'a str, body: &'a str) -> Self {
        RequestView {
            method,
            path,
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.as_bytes(),
        }
    }

    /// A JSON `POST` (the cost models' tests).
    #[cfg(test)]
    pub(crate) fn json_test(path: &'a str, body: &'a str) -> Self {
        RequestView {
            method: "POST",
            path,
            query: None,
            content_type: Some("application/json"),
            body: body.as_bytes(),
        }
    }

    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').skip(1).collect()
    }

    /// Form fields of an `application/x-www-form-urlencoded` body. `None` when the body is
    /// declared as something else (a priced call then cannot be priced).
    pub fn form(&self) -> Option<Vec<(String, String)>> {
        let is_form = match self.content_type {
            None => true,
            Some(ct) => ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            }),
        };
        is_form.then(|| {
            form_urlencoded::parse(self.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
    }
}

/// One form field that must appear at most once: a duplicated money field could be read one
/// way here and another way by the vendor, so it is refused.
pub(crate) fn single_field<'f>(
    form: &'f [(String, String)],
    name: &str,
) -> Result<Option<&'f str>, String> {
    let mut it = form.iter().filter(|(k, _)| k == name);
    let first = it.next();
    if it.next().is_some() {
        return Err(format!("field {name} appears more than once"));
    }
    Ok(first.map(|(_, v)| v.as_str()))
}

/// What a model says about a request before it is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Estimate {
    /// The call moves no money.
    Free,
    /// The call may move up to `micros`. `object_id` names the vendor object it acts on
    /// (a PaymentIntent being confirmed), so money already counted for it is not counted twice.
    Priced {
        micros: i64,
        object_id: Option<String>,
    },
    /// The call's amount lives on an object seen earlier (confirm, capture, refund, invoice
    /// pay). `amount_minor`, when the request names one, is priced in the remembered object's
    /// currency; otherwise the remembered amount is the estimate. `same_object`: the call acts
    /// on `lookup` itself (confirm, capture), so money already counted for it is not counted
    /// twice; a refund is a new object. `at_most_remembered`: the vendor cannot move more than
    /// the remembered amount (a refund of what is left on a charge), so the estimate is bounded
    /// by it.
    FromMemory {
        lookup: String,
        amount_minor: Option<i64>,
        same_object: bool,
        at_most_remembered: bool,
    },
    /// The call may move money but the gateway cannot say how much: refuse.
    CannotPrice(String),
}

/// The vendor's answer as a model sees it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

/// What the answer says moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: MoneyState,
    pub cost_micros: i64,
    pub object: Option<ObjectFacts>,
}

impl Outcome {
    pub fn none() -> Self {
        Outcome {
            state: MoneyState::None,
            cost_micros: 0,
            object: None,
        }
    }
    pub fn unknown(estimate: i64) -> Self {
        Outcome {
            state: MoneyState::Unknown,
            cost_micros: estimate,
            object: None,
        }
    }
}

/// Facts about a vendor object seen in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    pub id: String,
    /// An amount to remember for a later confirm / capture / refund / pay of this object.
    pub remember: Option<Remembered>,
    /// The outcome's state and cost describe the object's whole money position (a
    /// PaymentIntent's status), so earlier records of the same object are replaced by it.
    pub authoritative: bool,
}

/// A vendor's cost model.
pub trait CostModel: Send + Sync {
    fn vendor(&self) -> Vendor;

    /// The names of the models the catalogue's `priced` lines may name.
    fn models(&self) -> &'static [&'static str];

    /// Price a request the catalogue classes as `priced MODEL`, before it is forwarded.
    fn estimate_with(&self, pricing: &Pricing, model: &str, req: &RequestView<'_>) -> Estimate;

    /// Read the vendor's answer. `estimate` is what was reserved for this call (0 if free).
    fn settle(
        &self,
        pricing: &Pricing,
        req: &RequestView<'_>,
        estimate: i64,
        resp: &ResponseView<'_>,
    ) -> Outcome;
}

/// Shared answer classification: 5xx or an unusable body means "unknown" (keep the
/// reservation); 4xx means the vendor refused before any effect (release).
pub(crate) fn classify_failure(status: u16, estimate: i64) -> Option<Outcome> {
    if status >= 500 || (300..400).contains(&status) || status < 200 {
        Some(Outcome::unknown(estimate))
    } else if (400..500).contains(&status) {
        Some(Outcome::none())
    } else {
        None
    }
}
