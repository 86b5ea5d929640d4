//! Vendor cost models: one trait, one file per vendor. A model reads the request to estimate
//! the cost before forwarding, and reads the answer to say what actually moved. The price
//! phase's decision (catalogue class, operator override, then the model) is [`price`].

pub mod action;
mod by_vendor;
pub mod currency;
pub mod model;
pub mod price;
pub mod prices;
pub mod resend;
pub mod stripe;
pub mod twilio;

pub use model::{CostModel, Estimate, ObjectFacts, Outcome, RequestView, ResponseView};
pub use price::{estimate, price, Priced};
pub use prices::{PriceOverride, Pricing};
