"""Every environment variable spanchain reads, with its default and meaning: one list.

Each constant's value is the variable's name; the docstring under it gives the default and what it
means (the way OpenTelemetry's SDK lists its variables). Code reads these through
`spanchain.config.resolve` (argument, then environment variable, then default); no module spells a
variable's name itself, and docs/configuration.md documents every one of them (both checked by
tests/test_config_env.py). OpenTelemetry's own variables mean what the OpenTelemetry
specification says; spanchain's are prefixed SPANCHAIN_, OTEL_EXPORTER_AIM_ or
OTEL_EXPORTER_SAGEMAKER_.
"""

OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
"""Default: unknown_service:<executable>. `service.name` of the resource spanchain creates; also the default Aim/SageMaker experiment."""

OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
"""Default: otlp. Comma list of exporters by entry-point name (aim, sagemaker, otlp, console, spanchain_console, ...); `none`: no exporter."""

OTEL_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"
"""Default: parentbased_always_on. The sampler of a provider spanchain creates."""

OTEL_TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"
"""Default: 1.0. The ratio of the `*traceidratio` samplers."""

OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""Default: http/protobuf. Transport of the `otlp` exporter."""

OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
"""Default: (OTEL_EXPORTER_OTLP_PROTOCOL). Transport of the `otlp` exporter for traces; wins over OTEL_EXPORTER_OTLP_PROTOCOL."""

OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
"""Default: (none). Longest attribute value; content is kept within it."""

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Default: true. `false` or `NO_CONTENT`: no prompts, messages, inputs or outputs on any span."""

SPANCHAIN_OTLP_CONTENT = "SPANCHAIN_OTLP_CONTENT"
"""Default: false. `true`: content also goes to OTLP and every exporter not in SPANCHAIN_CONTENT_EXPORTERS."""

SPANCHAIN_CONTENT_EXPORTERS = "SPANCHAIN_CONTENT_EXPORTERS"
"""Default: aim,sagemaker,console,spanchain_console. Exporter names that receive prompts and outputs."""

SPANCHAIN_INSTRUMENT = "SPANCHAIN_INSTRUMENT"
"""Default: true. Add the LangChain handler to every run (`spanchain.instrument()`)."""

SPANCHAIN_SUMMARY = "SPANCHAIN_SUMMARY"
"""Default: true. At exit, print on stderr where the spans went."""

SPANCHAIN_CONSOLE_OUTPUT = "SPANCHAIN_CONSOLE_OUTPUT"
"""Default: stderr. Where `spanchain_console` prints: `stderr`, `stdout` or a file path."""

SPANCHAIN_MAX_CONTENT_LENGTH = "SPANCHAIN_MAX_CONTENT_LENGTH"
"""Default: 32768. Longest content value before truncation."""

SPANCHAIN_REDACT_SECRETS = "SPANCHAIN_REDACT_SECRETS"
"""Default: true. Mask secret-looking values before they leave the process."""

SPANCHAIN_REDACT_PATTERNS = "SPANCHAIN_REDACT_PATTERNS"
"""Default: (none). Extra regular expressions to mask, separated by newlines or `;;`."""

SPANCHAIN_RUN_TTL_SECONDS = "SPANCHAIN_RUN_TTL_SECONDS"
"""Default: 3600. A run that never ends is closed (and marked abandoned) after this many seconds."""

SPANCHAIN_MAX_OPEN_RUNS = "SPANCHAIN_MAX_OPEN_RUNS"
"""Default: 10000. Most runs tracked at once."""

SPANCHAIN_ATTACH_CONTEXT = "SPANCHAIN_ATTACH_CONTEXT"
"""Default: true. `false`: do not make a run's span current for the code inside the run."""

SPANCHAIN_SPOOL_DIR = "SPANCHAIN_SPOOL_DIR"
"""Default: (off). Durable on-disk spool for every exporter (one folder each); an exporter's own *_SPOOL_DIR wins."""

SPANCHAIN_SPOOL_MAX_BYTES = "SPANCHAIN_SPOOL_MAX_BYTES"
"""Default: 268435456. Size cap of one exporter's spool, in bytes."""

SPANCHAIN_SPOOL_FSYNC = "SPANCHAIN_SPOOL_FSYNC"
"""Default: true. fsync each spool record (`false`: survives a process crash, not an OS crash)."""

SPANCHAIN_SERVE_EXPORTERS = "SPANCHAIN_SERVE_EXPORTERS"
"""Default: aim,sagemaker. `spanchain serve`: exporter names, or `package.module:Class`."""

SPANCHAIN_SERVE_HOST = "SPANCHAIN_SERVE_HOST"
"""Default: 127.0.0.1. `spanchain serve`: the address to listen on."""

SPANCHAIN_SERVE_PORT = "SPANCHAIN_SERVE_PORT"
"""Default: 4318. `spanchain serve`: the port (`0`: any free port)."""

SPANCHAIN_SERVE_TOKEN = "SPANCHAIN_SERVE_TOKEN"
"""Default: (none). `spanchain serve`: require `Authorization: Bearer TOKEN`."""

SPANCHAIN_SERVE_MAX_REQUEST_BYTES = "SPANCHAIN_SERVE_MAX_REQUEST_BYTES"
"""Default: 16777216. `spanchain serve`: larger bodies get 413 before they are read."""

SPANCHAIN_SERVE_MAX_DECOMPRESSED_BYTES = "SPANCHAIN_SERVE_MAX_DECOMPRESSED_BYTES"
"""Default: 67108864. `spanchain serve`: compressed bodies that inflate past this get 413."""

SPANCHAIN_SERVE_QUEUE_SPANS = "SPANCHAIN_SERVE_QUEUE_SPANS"
"""Default: 20000. `spanchain serve`: spans held before answering 429."""

SPANCHAIN_SERVE_MAX_CONNECTIONS = "SPANCHAIN_SERVE_MAX_CONNECTIONS"
"""Default: 64. `spanchain serve`: requests handled at once; more get 503."""

SPANCHAIN_SERVE_SPOOL_DIR = "SPANCHAIN_SERVE_SPOOL_DIR"
"""Default: $XDG_STATE_HOME/spanchain/serve-spool. `spanchain serve`: durable spool of its exporters; `off` disables it."""

SPANCHAIN_SERVE_TRANSLATE = "SPANCHAIN_SERVE_TRANSLATE"
"""Default: true. `spanchain serve`: translate OpenInference / OpenLLMetry / gen_ai spans."""

SPANCHAIN_SERVE_REPLICA = "SPANCHAIN_SERVE_REPLICA"
"""Default: <hostname>-<pid>. `spanchain serve`: this replica's name, appended to fixed run names."""

SPANCHAIN_SERVE_LOG_LEVEL = "SPANCHAIN_SERVE_LOG_LEVEL"
"""Default: info. `spanchain serve`: its own log level; `debug` also shows the libraries' logs."""

XDG_STATE_HOME = "XDG_STATE_HOME"
"""Default: ~/.local/state. Where `spanchain serve` keeps its default spool."""

OTEL_EXPORTER_AIM_REPO = "OTEL_EXPORTER_AIM_REPO"
"""Default: .. Aim repo: a local path or `aim://host:port`."""

OTEL_EXPORTER_AIM_EXPERIMENT = "OTEL_EXPORTER_AIM_EXPERIMENT"
"""Default: (OTEL_SERVICE_NAME, else langchain). Aim experiment of the runs."""

OTEL_EXPORTER_AIM_RUN_PER = "OTEL_EXPORTER_AIM_RUN_PER"
"""Default: session. `session`: one run per exporter; `trace`: one run per root LangChain run."""

OTEL_EXPORTER_AIM_RUN_NAME = "OTEL_EXPORTER_AIM_RUN_NAME"
"""Default: (generated). A fixed run name."""

OTEL_EXPORTER_AIM_SYSTEM_TRACKING_INTERVAL = "OTEL_EXPORTER_AIM_SYSTEM_TRACKING_INTERVAL"
"""Default: (off). Seconds between Aim's system-resource samples."""

OTEL_EXPORTER_AIM_LOG_SYSTEM_PARAMS = "OTEL_EXPORTER_AIM_LOG_SYSTEM_PARAMS"
"""Default: false. Record (filtered) system params on the run."""

OTEL_EXPORTER_AIM_MAX_TEXT_CHARS = "OTEL_EXPORTER_AIM_MAX_TEXT_CHARS"
"""Default: 100000. Longest Aim Text value."""

OTEL_EXPORTER_AIM_MAX_CONTEXTS = "OTEL_EXPORTER_AIM_MAX_CONTEXTS"
"""Default: 1000. Most distinct sequence contexts per run before they are folded."""

OTEL_EXPORTER_AIM_TRACE_GRACE_SECONDS = "OTEL_EXPORTER_AIM_TRACE_GRACE_SECONDS"
"""Default: 5. A trace is written this long after its root span, complete or not."""

OTEL_EXPORTER_AIM_TRACE_IDLE_SECONDS = "OTEL_EXPORTER_AIM_TRACE_IDLE_SECONDS"
"""Default: 60. ... or this long after its last span when no root comes."""

OTEL_EXPORTER_AIM_TIMEOUT = "OTEL_EXPORTER_AIM_TIMEOUT"
"""Default: 10000. Shutdown wait, in milliseconds."""

OTEL_EXPORTER_AIM_REMOTE_WRITE_TIMEOUT = "OTEL_EXPORTER_AIM_REMOTE_WRITE_TIMEOUT"
"""Default: 30000. `aim://`: wait for the server to confirm a trace, in milliseconds."""

OTEL_EXPORTER_AIM_TRACE_FIGURES = "OTEL_EXPORTER_AIM_TRACE_FIGURES"
"""Default: true. Track each trace as a waterfall figure."""

OTEL_EXPORTER_AIM_SEED_COUNTERS = "OTEL_EXPORTER_AIM_SEED_COUNTERS"
"""Default: false. Add langchain_community's 13 `counter.*` metrics per trace."""

OTEL_EXPORTER_AIM_SPOOL_DIR = "OTEL_EXPORTER_AIM_SPOOL_DIR"
"""Default: (SPANCHAIN_SPOOL_DIR). Durable spool of the Aim exporter."""

OTEL_EXPORTER_SAGEMAKER_EXPERIMENT = "OTEL_EXPORTER_SAGEMAKER_EXPERIMENT"
"""Default: (OTEL_SERVICE_NAME, else spanchain). SageMaker experiment of the runs."""

OTEL_EXPORTER_SAGEMAKER_RUN_NAME = "OTEL_EXPORTER_SAGEMAKER_RUN_NAME"
"""Default: (generated). Session mode: the run's name; trace mode: the prefix of each run's name."""

OTEL_EXPORTER_SAGEMAKER_RUN_PER = "OTEL_EXPORTER_SAGEMAKER_RUN_PER"
"""Default: session. `session` or `trace`."""

OTEL_EXPORTER_SAGEMAKER_BUCKET = "OTEL_EXPORTER_SAGEMAKER_BUCKET"
"""Default: (the session's default bucket). S3 bucket of the trace documents."""

OTEL_EXPORTER_SAGEMAKER_PREFIX = "OTEL_EXPORTER_SAGEMAKER_PREFIX"
"""Default: trial-component-artifacts. S3 key prefix of the trace documents."""

OTEL_EXPORTER_SAGEMAKER_RESOURCE_PARAMETERS = "OTEL_EXPORTER_SAGEMAKER_RESOURCE_PARAMETERS"
"""Default: (none). Resource attributes recorded as run parameters besides the allow list, comma-separated."""

OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR = "OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR"
"""Default: (SPANCHAIN_SPOOL_DIR). Durable spool of the SageMaker exporter."""

OTEL_EXPORTER_SAGEMAKER_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_TIMEOUT"
"""Default: 30000. Time budget of one write (every call, retry and wait), in milliseconds."""

OTEL_EXPORTER_SAGEMAKER_CONNECT_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_CONNECT_TIMEOUT"
"""Default: 5000. Per HTTP connection attempt, in milliseconds."""

OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT"
"""Default: 15000. Per wait for response bytes, in milliseconds."""
