//! Every example's scenarios, run against its compiled component: the same
//! scenarios the example runs natively, so the shipped `.wasm` is tested
//! and not only its Rust code.

#![allow(clippy::panic)]

use projector::engine::ApplyError;
use projector_examples::{CUSTOMER_VIEW, EVENT_COUNTER, MISBEHAVING, ORDER_TOTALS};
use projector_sdk::testing::Failure;
use projector_tests::host;

mod customer_view {
    use super::*;
    use ::customer_view::scenarios;

    #[test]
    fn lifecycle() {
        scenarios::lifecycle(&mut host(&CUSTOMER_VIEW));
    }

    #[test]
    fn redelivery_is_not_applied_twice() {
        scenarios::redelivery_is_not_applied_twice(&mut host(&CUSTOMER_VIEW));
    }

    #[test]
    fn subjects_from_several_partitions() {
        scenarios::subjects_from_several_partitions(&mut host(&CUSTOMER_VIEW));
    }

    #[test]
    fn bad_data_is_an_invalid_data_error() {
        scenarios::bad_data_is_rejected(&mut host(&CUSTOMER_VIEW));
    }
}

mod order_totals {
    use super::*;
    use ::order_totals::scenarios;

    #[test]
    fn totals_follow_placed_and_cancelled_orders() {
        scenarios::totals_follow_placed_and_cancelled_orders(&mut host(&ORDER_TOTALS));
    }

    #[test]
    fn invalid_orders_fail_alone() {
        scenarios::invalid_orders_fail_alone(&mut host(&ORDER_TOTALS));
    }

    #[test]
    fn redelivered_order_counts_once() {
        scenarios::redelivered_order_counts_once(&mut host(&ORDER_TOTALS));
    }
}

mod event_counter {
    use super::*;
    use ::event_counter::scenarios;

    #[test]
    fn counts_match_the_oracle() {
        scenarios::counts_match_the_oracle(&mut host(&EVENT_COUNTER));
    }

    proptest::proptest! {
        /// Any mix of first deliveries and redeliveries leaves the
        /// component's rows equal to the oracle fold.
        #[test]
        fn deliveries_match_the_oracle(deliveries in scenarios::deliveries(120)) {
            scenarios::deliveries_match_the_oracle(&mut host(&EVENT_COUNTER), &deliveries);
        }
    }
}

mod misbehaving {
    use super::*;
    use ::misbehaving::scenarios;

    #[test]
    fn benign_events_count() {
        scenarios::benign_events_count(&mut host(&MISBEHAVING));
    }

    #[test]
    fn panic_then_benign_events() {
        let mut host = host(&MISBEHAVING);
        let outcome = host.publish(scenarios::misbehave("panic"));
        assert!(
            matches!(
                outcome.failure(),
                Some(Failure::Applier(ApplyError::Panic { .. }))
            ),
            "{outcome:?}"
        );
        scenarios::benign_events_count(&mut host);
    }

    #[test]
    fn invalid_json_row_is_refused() {
        let mut host = host(&MISBEHAVING);
        let outcome = host.publish(scenarios::misbehave("invalid-json"));
        assert!(
            matches!(
                outcome.failure(),
                Some(Failure::Applier(ApplyError::InvalidRow { .. }))
            ),
            "{outcome:?}"
        );
        host.expect_no_row("victim");
    }
}
