//! Typed values of the data elements the profile uses, and accessors on
//! [`Message`](crate::Message) that parse and format them, so no other code
//! handles field strings.
//!
//! Layout, one concern per file; each value type's tests sit beside it:
//!
//! - `de`: the data element numbers of the profile.
//! - `digits`: fixed-width decimal digits, parsed and written, for the
//!   numeric types.
//! - `ids`: the fixed-width text ids: [`TerminalId`] (DE 41), [`MerchantId`]
//!   (DE 42), [`Rrn`] (DE 37) and [`AuthId`] (DE 38).
//! - `stan`: [`Stan`] (DE 11).
//! - `amount`: [`Amount`] (DE 4) and [`Currency`] (DE 49).
//! - `processing_code`: [`ProcessingCode`] (DE 3).
//! - `transmission_time`: [`TransmissionTime`] (DE 7).
//! - `civil`: calendar arithmetic, [`days_from_civil`] and
//!   [`civil_from_days`].
//! - `response_code`: [`ResponseCode`] (DE 39).
//! - `network_code`: [`NetworkCode`] (DE 70).
//! - `additional_amounts`: [`AccountType`], [`AmountType`], [`AmountBlock`]
//!   and [`AmountBlocks`] (DE 54).
//! - `original_data`: [`OriginalData`] (DE 90).
//! - `accessors`: the typed reads and writes on `Message`.
//!
//! The files are private; every public item is re-exported here, so its path
//! is `fields::X` whichever file defines it.

mod accessors;
mod additional_amounts;
mod amount;
mod civil;
pub mod de;
mod digits;
mod ids;
mod network_code;
mod original_data;
mod processing_code;
mod response_code;
mod stan;
mod transmission_time;

pub use additional_amounts::{AccountType, AmountBlock, AmountBlocks, AmountType};
pub use amount::{Amount, Currency};
pub use civil::{civil_from_days, days_from_civil};
pub use ids::{AuthId, MerchantId, Rrn, TerminalId};
pub use network_code::NetworkCode;
pub use original_data::OriginalData;
pub use processing_code::ProcessingCode;
pub use response_code::ResponseCode;
pub use stan::Stan;
pub use transmission_time::TransmissionTime;
