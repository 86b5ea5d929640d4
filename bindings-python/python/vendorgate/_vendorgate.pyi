"""Native half of vendorgate (Rust, pyo3). Use the :mod:`vendorgate` package instead."""

from typing import Awaitable, List, Optional, Tuple, final

__all__ = [
    "NativeError",
    "NativeGateway",
    "NativeResponse",
    "_after_fork_in_child",
    "error_classes",
    "reason_class_names",
    "class_of_reason",
    "settings_keys",
    "AUDIT_DEFAULT_LIMIT",
    "__version__",
]
__version__: str
AUDIT_DEFAULT_LIMIT: int

class NativeError(Exception):
    """A gateway error: args are (class_name, code, status, message, details_json)."""

@final
class NativeResponse:
    """A vendor answer as the native module returns it."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> List[Tuple[str, str]]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def cost_micros(self) -> int: ...
    @property
    def remaining_micros(self) -> Optional[int]: ...

@final
class NativeGateway:
    """An open gateway, embedded or connected."""

    @staticmethod
    def open(path: str, config_json: Optional[str] = None) -> NativeGateway: ...
    @staticmethod
    def connect(url: str, admin_token: Optional[str] = None) -> NativeGateway: ...
    @property
    def mode(self) -> str: ...
    def issue_key(self, spec_json: str) -> str: ...
    def revoke(self, key: str) -> None: ...
    def usage(self, key: str) -> str: ...
    def create_budget(self, spec_json: str) -> str: ...
    def budget(self, name: str) -> str: ...
    def budgets(self) -> str: ...
    def list_keys(self, run_id: Optional[str] = None, active: bool = False) -> str: ...
    def audit(
        self,
        key_id: Optional[str] = None,
        run_id: Optional[str] = None,
        since_ms: Optional[int] = None,
        limit: int = 0,
    ) -> str: ...
    def request(
        self,
        vault_key: str,
        vendor: str,
        method: str,
        path: str,
        headers: List[Tuple[str, str]],
        body_kind: str,
        body: Optional[bytes] = None,
    ) -> NativeResponse: ...
    def arequest(
        self,
        vault_key: str,
        vendor: str,
        method: str,
        path: str,
        headers: List[Tuple[str, str]],
        body_kind: str,
        body: Optional[bytes] = None,
    ) -> Awaitable[NativeResponse]: ...
    def _bench_core(self, vault_key: str, vendor: str, method: str, path: str, calls: int) -> float: ...
    def serve(self, port: int = 0, admin_token: Optional[str] = None, host: str = "127.0.0.1") -> str: ...
    def close(self) -> None: ...

def _after_fork_in_child() -> None: ...
def error_classes() -> List[Tuple[str, Optional[str]]]: ...
def reason_class_names() -> List[Tuple[str, str]]: ...
def class_of_reason(reason: str, status: int = 400) -> str: ...
def settings_keys() -> List[Tuple[str, str, str]]: ...
