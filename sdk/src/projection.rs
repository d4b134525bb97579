//! The authoring traits.
//!
//! Implement [`Projection`] to work with a typed row, or [`RawProjection`] to
//! work with the row's JSON text directly. [`Typed`] turns the first into the
//! second; it is the single place where rows are parsed and serialised, and
//! both the component glue and the native mock host go through it, so a
//! projection behaves the same in tests and in the runtime.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Event, RawUpdate, Update};

/// A projection with a typed row.
///
/// It must be deterministic: the same `(state, event)` always gives the same
/// result. The runtime offers no clock, randomness, filesystem or network.
pub trait Projection {
    /// The view row, stored as JSON.
    type Row: Serialize + DeserializeOwned;

    /// Apply `event` to the subject's current row (`None` when it has none).
    fn apply(state: Option<Self::Row>, event: &Event) -> Result<Update<Self::Row>, Error>;
}

/// A projection that works on the row's JSON text.
///
/// The runtime rejects a `Set` whose text is not valid JSON.
pub trait RawProjection {
    /// Apply `event` to the subject's current row (`None` when it has none).
    fn apply(state: Option<&str>, event: &Event) -> Result<RawUpdate, Error>;
}

/// Adapts a [`Projection`] to a [`RawProjection`]: parses the stored row,
/// applies, and serialises the new row.
#[derive(Debug)]
pub struct Typed<P>(PhantomData<P>);

impl<P: Projection> RawProjection for Typed<P> {
    fn apply(state: Option<&str>, event: &Event) -> Result<RawUpdate, Error> {
        let state = state
            .map(serde_json::from_str::<P::Row>)
            .transpose()
            .map_err(|err| {
                Error::new(
                    Error::INVALID_STATE,
                    format!("the stored row does not fit the projection's row type: {err}"),
                )
            })?;
        let update = P::apply(state, event)?;
        match update {
            Update::Set(row) => serde_json::to_string(&row).map(Update::Set).map_err(|err| {
                Error::new(
                    "invalid-row",
                    format!("the row does not serialise to JSON: {err}"),
                )
            }),
            Update::Delete => Ok(Update::Delete),
            Update::Ignore => Ok(Update::Ignore),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct Counter {
        n: u64,
    }

    struct Count;
    impl Projection for Count {
        type Row = Counter;
        fn apply(state: Option<Counter>, event: &Event) -> Result<Update<Counter>, Error> {
            match event.ty.as_str() {
                "delete" => Ok(Update::Delete),
                "ignore" => Ok(Update::Ignore),
                _ => Ok(Update::Set(Counter {
                    n: state.map_or(0, |c| c.n) + 1,
                })),
            }
        }
    }

    fn event(ty: &str) -> Event {
        Event {
            ty: ty.into(),
            ..Event::default()
        }
    }

    #[test]
    fn typed_round_trips_rows_as_json() {
        let update = Typed::<Count>::apply(Some(r#"{"n":41}"#), &event("inc")).unwrap();
        assert_eq!(update, Update::Set(r#"{"n":42}"#.to_string()));
        assert_eq!(
            Typed::<Count>::apply(None, &event("delete")).unwrap(),
            Update::Delete
        );
        assert_eq!(
            Typed::<Count>::apply(None, &event("ignore")).unwrap(),
            Update::Ignore
        );
    }

    #[test]
    fn typed_reports_a_stored_row_of_the_wrong_shape() {
        let err = Typed::<Count>::apply(Some(r#"{"m":"x"}"#), &event("inc")).unwrap_err();
        assert_eq!(err.code, Error::INVALID_STATE);
    }
}
