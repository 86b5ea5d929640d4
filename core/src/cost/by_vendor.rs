//! Which cost model prices which vendor.

use super::model::CostModel;
use super::{resend, stripe, twilio};
use crate::vendors::Vendor;

impl Vendor {
    /// The vendor's cost model.
    pub fn model(self) -> &'static dyn CostModel {
        match self {
            Vendor::Stripe => &stripe::Stripe,
            Vendor::Twilio => &twilio::Twilio,
            Vendor::Resend => &resend::Resend,
        }
    }
}
