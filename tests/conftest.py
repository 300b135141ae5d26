"""The test harness starts the real infrastructure itself: Apache Kafka (KRaft) and SecantusDB.

Both run on their own ports with fresh data under `.local/test/`, so a `make run` on the same
machine is left alone. Every port the tests listen on is below Linux's ephemeral range (32768–60999),
so an outgoing connection can never hold it when Kafka or SecantusDB restarts mid-test. A test that
needs them and cannot reach them fails; it never skips.
"""

import os
from collections.abc import Iterator

import pytest

from deploy.local import infra as local_infra

# Assertions in the shared helpers show their difference, as those in test modules do.
pytest.register_assert_rewrite("tests.e2e.helpers", "tests.e2e.truth")


@pytest.fixture(scope="session")
def infra() -> Iterator[local_infra.Infra]:
    infra = local_infra.Infra(
        profile="test",
        kafka_port=int(os.environ.get("COD_TEST_KAFKA_PORT", 19092)),
        kafka_controller_port=int(os.environ.get("COD_TEST_KAFKA_CONTROLLER_PORT", 19093)),
        mongo_port=int(os.environ.get("COD_TEST_MONGO_PORT", 17017)),
    )
    local_infra.up(infra, fresh=True)
    yield infra
    local_infra.down(infra)
