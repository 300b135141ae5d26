from tests.e2e.truth import Accepted, latest_per_respondent


def test_the_ground_truth_orders_receipts_as_instants_not_as_text() -> None:
    # Pydantic omits the fraction of a whole second: as text, "…:01Z" sorts after "…:01.123000Z".
    whole = Accepted({}, "r-a", "t", "2026-11-27T01:50:01Z")
    later = Accepted({}, "r-b", "t", "2026-11-27T01:50:01.123000Z")
    assert latest_per_respondent([later, whole]) == [later]
    assert latest_per_respondent([whole, later]) == [later]
