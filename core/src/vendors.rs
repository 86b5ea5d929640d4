//! The vendors the gateway fronts. A leaf: it imports nothing from the crate, so every
//! other module can name a vendor without pulling in what is known about it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Stripe,
    Twilio,
    Resend,
}

impl Vendor {
    pub const ALL: [Vendor; 3] = [Vendor::Stripe, Vendor::Twilio, Vendor::Resend];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Stripe => "stripe",
            Vendor::Twilio => "twilio",
            Vendor::Resend => "resend",
        }
    }

    pub fn parse(s: &str) -> Option<Vendor> {
        match s {
            "stripe" => Some(Vendor::Stripe),
            "twilio" => Some(Vendor::Twilio),
            "resend" => Some(Vendor::Resend),
            _ => None,
        }
    }

    /// Best guess of the vendor from a path alone, used only to shape a refusal given before
    /// the vault key is known.
    pub fn guess_from_path(path: &str) -> Option<Vendor> {
        if path.starts_with("/v1/") || path.starts_with("/v2/") {
            Some(Vendor::Stripe)
        } else if path.starts_with("/2010-04-01/") {
            Some(Vendor::Twilio)
        } else if path.starts_with("/emails")
            || path.starts_with("/domains")
            || path.starts_with("/audiences")
        {
            Some(Vendor::Resend)
        } else {
            None
        }
    }
}

/// A vendor name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVendor(pub String);

impl std::fmt::Display for UnknownVendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not one of stripe, twilio, resend", self.0)
    }
}

impl std::error::Error for UnknownVendor {}

impl std::str::FromStr for Vendor {
    type Err = UnknownVendor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::parse(s).ok_or_else(|| UnknownVendor(s.chars().take(32).collect()))
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
