import pytest
from pgcluster import Cluster


@pytest.fixture(scope="session")
def cluster():
    """One private cluster for the whole run; each test makes its own databases in it."""
    c = Cluster().start()
    yield c
    c.destroy()


@pytest.fixture
def fresh_db(cluster):
    """An empty database, dropped after the test."""
    name = cluster.create_database()
    yield name
    cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def migrated_db(cluster, fresh_db):
    """A database with the ledger installed by make migrate's script."""
    result = cluster.migrate(fresh_db)
    assert result.returncode == 0, result.stderr
    return fresh_db
