import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def _no_network():
    """Unit tests are pure logic: any socket use is a bug."""
    pytest_socket.disable_socket()
    yield
    pytest_socket.enable_socket()
