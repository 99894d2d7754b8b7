"""What went wrong, told so that a person can act on it. Every failure the recorder and jr-steps
meet is classified here, and only here (classify), as one of:

    bad_input  the call itself is wrong: SQLSTATE class 22 (but 2200H), 23 or P0, a number beyond
               32 bits, a value psycopg2 cannot send. Retrying cannot help: the event is rejected.
    outage     the database is away or busy for now: refused, reset or timed out, shutting down or
               starting up, classes 08, 53 and 57, a lock or serialization conflict, our own
               deadline. The event is spooled and the recorder retries by itself.
    anything else is a problem a person must fix, told with its fix: a refused login, a missing
               privilege, a pooler refusing a startup parameter, the ledger not installed, ... The
               event is spooled too, so it replays once the problem is fixed.

Nothing told here holds a password: callers pass what they say through redact().
"""

import concurrent.futures
import dataclasses
import getpass
import os
import re

import psycopg2
import psycopg2.extensions


@dataclasses.dataclass(frozen=True)
class Failure:
    kind: str  # 'bad_input', 'outage', or the problem a person must fix
    message: str  # what happened and, for a problem, its fix

    @property
    def permanent(self):
        """Retrying cannot help: the event goes to the rejected file."""
        return self.kind == "bad_input"

    @property
    def outage(self):
        """It passes by itself: the database is away or busy."""
        return self.kind == "outage"


class ConfigurationError(Exception):
    """The recorder's own settings cannot work (a malformed DSN). Not permanent for an event: once
    the settings are fixed, the spooled events replay."""


def dsn_problem(dsn):
    """None, or why a DSN cannot work. libpq's own message quotes the DSN, password and all, so it
    is never passed on."""
    try:
        psycopg2.extensions.parse_dsn(dsn or "")
    except psycopg2.Error:
        return "the DSN is malformed (libpq's message is withheld: it quotes the DSN, which may hold a password)"
    return None


def describe(exc):
    """An exception as one line: its type, and the server's own message (or its text) when it has one."""
    text = _detail(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _detail(exc):
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if getattr(exc, "pgcode", None) and diag is not None else None
    return " ".join((primary or str(exc)).split())


# SQLSTATEs that say what kind of failure it is: exact codes first, then their class.
_SQLSTATE_KINDS = {
    "2200H": "ledger_full",  # sequence_generator_limit_exceeded: a server-side limit, not the call's input
    "25006": "read_only",  # read_only_sql_transaction: a standby
    "42501": "privilege",  # insufficient_privilege
    "42883": "not_installed",  # undefined_function (but see _undefined_function)
    "3F000": "not_installed",  # invalid_schema_name
    "42P01": "not_installed",  # undefined_table
    "55P03": "outage",  # lock_not_available: our lock_timeout
    "40001": "outage",  # serialization_failure
    "40P01": "outage",  # deadlock_detected
    "22": "bad_input", "23": "bad_input", "P0": "bad_input",
    "08": "outage",  # connection exceptions
    "53": "outage",  # insufficient resources: too many connections, disk full, out of memory
    "57": "outage",  # operator intervention: shutdown, crash, starting up, our statement_timeout (57014)
}

# Failures without a SQLSTATE (libpq at connect time, a pooler, psycopg2 itself) are known by
# their text; a connection failure that matches none of these is an outage.
_TEXT_KINDS = [
    # PgBouncer before 1.20 refuses `options` itself; from 1.20 it refuses what `options` sets, unless tracked.
    (r"unsupported startup parameter|unsupported options startup parameter", "startup_parameter"),
    (r"password authentication failed|SASL authentication failed|no password supplied|password is required|"
     r"authentication failed", "login_refused"),
    (r"no pg_hba\.conf entry|pg_hba\.conf rejects", "login_refused"),
    (r'role "[^"]*" does not exist|no such user', "login_refused"),
    (r'database "[^"]*" does not exist|no such database', "login_refused"),
    (r"permission denied for database|does not have CONNECT privilege", "login_refused"),
    (r"invalid dsn|invalid connection option|invalid \w+ value|definition of service \"[^\"]*\" not found",
     "configuration"),
    (r"can't adapt", "bad_input"),
]

_OUR_FUNCTION = re.compile(r"function public\.(record_step|step_succeeded|set_step_reward|record_exploration)"
                           r"\((?P<args>.*)\) does not exist")


def classify(exc, login=None, dbname=None):
    """The Failure that exc is. login and dbname name the connection in messages when the error
    itself does not (None: worked out from the libpq variables)."""
    if login is None or dbname is None:
        guess_login, guess_db = login_and_database()
        login, dbname = login or guess_login, dbname or guess_db
    if isinstance(exc, psycopg2.Error):
        code = exc.pgcode or ""
        kind = _SQLSTATE_KINDS.get(code) or _SQLSTATE_KINDS.get(code[:2])
        if code == "42883":
            kind = _undefined_function(exc)
        if not code:
            kind = _kind_by_text(str(exc)) or (
                "outage" if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) else None)
    elif isinstance(exc, (ValueError, TypeError)):  # InvalidEvent, or psycopg2 refusing a value
        kind = "bad_input"
    elif isinstance(exc, (TimeoutError, concurrent.futures.TimeoutError, OSError)):
        kind = "outage"
    elif isinstance(exc, ConfigurationError):
        kind = "configuration"
    else:
        kind = None
    kind = kind or "unexpected"
    return Failure(kind, _MESSAGES[kind](exc, _names(exc, login, dbname)))


def is_permanent(exc):
    """True for failures that retrying cannot fix (bad input): see classify."""
    return classify(exc, "", "").permanent


def _undefined_function(exc):
    """42883 for the ledger's own function: a number beyond 32 bits picks no overload (the call's
    fault); otherwise the function is missing (the ledger is not installed, or is older)."""
    found = _OUR_FUNCTION.search(_detail(exc))
    if found is None:
        return "unexpected"
    return "bad_input" if re.search(r"\b(bigint|numeric)\b", found["args"]) else "not_installed"


def _kind_by_text(text):
    for pattern, kind in _TEXT_KINDS:
        if re.search(pattern, text, re.IGNORECASE):
            return kind
    return None


def login_and_database(db_config=None, dsn=""):
    """The login and database that these settings ask for, as libpq picks them (the settings, then
    PGUSER and PGDATABASE, then the system user), for messages written before any connection."""
    try:
        settings = {**psycopg2.extensions.parse_dsn(dsn or ""), **(db_config or {})}
    except psycopg2.Error:
        settings = dict(db_config or {})
    login = settings.get("user") or os.environ.get("PGUSER") or _system_user()
    return str(login), str(settings.get("dbname") or os.environ.get("PGDATABASE") or login)


def _system_user():
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid: the messages say so
        return "(unknown)"


def _names(exc, login, dbname):
    """What messages need: the detail, and the login and database (the error's own, when it names them)."""
    detail = _detail(exc)
    named_login = re.search(r'(?:user|role) "([^"]*)"', detail)
    named_db = re.search(r'database "([^"]*)"', detail)
    param = re.search(r"unsupported startup parameter: (\S+)", detail)
    return {"detail": detail, "describe": describe(exc), "login": named_login[1] if named_login else login,
            "db": named_db[1] if named_db else dbname, "param": param[1] if param else "options"}


def _identifier(name):
    """name as it must be written in SQL."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _login_refused(exc, n):
    detail, login, db = n["detail"], n["login"], n["db"]
    if re.search(r"no pg_hba\.conf entry|pg_hba\.conf rejects", detail, re.I):
        return (f"the server refused login {login!r} ({detail}): a DBA adds a pg_hba.conf line for this login, "
                f"database and host")
    if re.search(r'role "[^"]*" does not exist', detail):
        return f"the server has no login {login!r} ({detail}): fix the user in db_config, or a DBA creates the role"
    if re.search(r'database "[^"]*" does not exist|no such database', detail, re.I):
        return f"the server has no database {db!r} ({detail}): fix the dbname in db_config"
    if re.search(r"permission denied for database|does not have CONNECT privilege", detail, re.I):
        return (f"login {login!r} may not connect to database {db!r} ({detail}): a DBA runs "
                f"GRANT CONNECT ON DATABASE {_identifier(db)} TO {_identifier(login)}")
    return (f"the server refused login {login!r} ({detail}): check its password (db_config, PGPASSWORD or "
            f"~/.pgpass) and that the server lets this login in (pg_hba.conf, or PgBouncer's auth_file)")


# The role that may execute each of the ledger's functions, when it is not jr_executor (db/privileges.sql):
# the reward work's writers have a role of their own, so the agent being graded cannot grade itself.
_ROLE_FOR_FUNCTION = {"set_step_reward": "jr_rewarder", "record_exploration": "jr_rewarder"}


def _privilege(exc, n):
    detail, login = n["detail"], n["login"]
    lacking = re.search(r"permission denied for (function|procedure|table|view|sequence|schema) (\S+)", detail)
    grantee = _identifier(login)
    if lacking and lacking[1] in ("function", "procedure"):
        role = _ROLE_FOR_FUNCTION.get(lacking[2], "jr_executor")
        return f"login {login!r} lacks EXECUTE on {lacking[2]} ({detail}): a DBA runs GRANT {role} TO {grantee}"
    if lacking and lacking[1] in ("table", "view"):
        return f"login {login!r} lacks SELECT on {lacking[2]} ({detail}): a DBA runs GRANT jr_reader TO {grantee}"
    return (f"login {login!r} lacks a privilege ({detail}): a DBA runs GRANT jr_executor TO {grantee} "
            f"(and GRANT jr_reader TO {grantee} to read the tables)")


_MESSAGES = {
    "bad_input": lambda exc, n: n["detail"],
    "outage": lambda exc, n: f"database unavailable ({n['describe']})",
    "login_refused": _login_refused,
    "privilege": _privilege,
    "startup_parameter": lambda exc, n: (
        f"the server refused the startup parameter {n['param']!r} ({n['detail']}): remove {n['param']!r} from "
        f"db_config (or PGOPTIONS), or add it to ignore_startup_parameters in pgbouncer.ini"),
    "not_installed": lambda exc, n: (
        f"the ledger is not installed in database {n['db']!r}, or is older than this client ({n['detail']}): "
        f"run make migrate against that database"),
    "ledger_full": lambda exc, n: (
        f"the ledger has run out of ids ({n['detail']}): a DBA widens the column to bigint "
        f"(README, Scale on paper)"),
    "read_only": lambda exc, n: f"the server is read-only, a standby? ({n['detail']}): point db_config at the primary",
    "configuration": lambda exc, n: (
        f"{n['detail']}: fix the DSN" if isinstance(exc, ConfigurationError)
        else f"the connection settings cannot work ({n['detail']}): fix db_config or the DSN"),
    "unexpected": lambda exc, n: f"the call failed unexpectedly ({n['describe']}): see the server's log",
}

# Shapes of a password in free text: key=value (a DSN, a URL's query) and a URL's user:password@.
_PASSWORD_SHAPES = [
    (re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"&]+)", re.IGNORECASE), r"\1***"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE), r"\1***@"),
]


def redact(text, secrets=()):
    """text without any of secrets (longest first) and without anything shaped like a password."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    for shape, replacement in _PASSWORD_SHAPES:
        text = shape.sub(replacement, text)
    return text
