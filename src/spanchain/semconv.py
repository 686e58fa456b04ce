"""The attribute vocabulary: the only contract between the handler and the exporters.

The handler writes these names onto spans; the Aim and SageMaker exporters (and `spanchain serve`)
read them back. Every name is documented in docs/vocabulary.md. GenAI names follow the OpenTelemetry
GenAI semantic conventions (development status); `langchain.*` names are ours.
"""

# --- LangChain run identity (every span) -----------------------------------------------------
LC_RUN_ID = "langchain.run_id"
LC_PARENT_RUN_ID = "langchain.parent_run_id"
LC_RUN_TYPE = "langchain.run_type"  # chain, llm, chat_model, tool, retriever, prompt, parser, ...
LC_NAME = "langchain.name"
LC_ROOT_RUN_ID = "langchain.root_run_id"  # the run at the top of this run's tree (groups a trace)
LC_TAGS = "langchain.tags"  # string[]
LC_METADATA_PREFIX = "langchain.metadata."  # one attribute per metadata key
LC_INPUT = "langchain.input"  # JSON text of the run's inputs (content)
LC_OUTPUT = "langchain.output"  # JSON text of the run's outputs (content)
LC_ABANDONED = "langchain.abandoned"  # true: ended by the registry (TTL/size cap), not by LangChain
LC_ABANDONED_REASON = "langchain.abandoned.reason"  # "ttl" | "capacity" | "shutdown"
LC_USAGE_SOURCE = "langchain.usage.source"  # "usage_metadata" | "llm_output"
LC_STREAM_CHUNKS = "langchain.stream.chunks"  # number of on_llm_new_token calls
LC_RETRIES = "langchain.retries"  # number of on_retry calls
LC_DESCENDANTS = "langchain.trace.descendants"  # on a root span: LangChain spans created under it
LC_CONTENT_TRUNCATED = "langchain.content.truncated"  # true when any content value was cut
LC_RETRIEVAL_DOCUMENT_COUNT = "langchain.retrieval.document_count"
LC_INTERRUPTED = "langchain.interrupted"  # LangGraph interrupt / bubble-up ended the run

# Roll-ups on workflow / agent / chain spans: totals over the model and tool calls beneath them.
# Kept apart from gen_ai.usage.* so that summing gen_ai.usage.* over a trace never double counts.
ROLLUP_INPUT_TOKENS = "langchain.rollup.input_tokens"
ROLLUP_OUTPUT_TOKENS = "langchain.rollup.output_tokens"
ROLLUP_LLM_CALLS = "langchain.rollup.llm_calls"
ROLLUP_TOOL_CALLS = "langchain.rollup.tool_calls"
ROLLUP_ERRORS = "langchain.rollup.errors"

# --- GenAI semantic conventions ------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"  # seconds, float
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"  # JSON: [{"role", "parts": [{"type", ...}]}]
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"  # JSON: [{"role", "parts", "finish_reason"}]
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"  # JSON: [{"type": "text", "content"}]
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"  # content
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"  # content
GEN_AI_RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"  # content
GEN_AI_RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"  # JSON: [{"id", "content", "metadata"}]
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
ERROR_TYPE = "error.type"

# gen_ai.operation.name values
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"
OP_EXECUTE_TOOL = "execute_tool"
OP_RETRIEVAL = "retrieval"
OP_INVOKE_AGENT = "invoke_agent"
OP_INVOKE_WORKFLOW = "invoke_workflow"

# --- Span events ---------------------------------------------------------------------------
EVENT_AGENT_ACTION = "langchain.agent.action"  # attrs: gen_ai.tool.name, tool_input, log
EVENT_AGENT_FINISH = "langchain.agent.finish"  # attrs: output, log
EVENT_RETRY = "langchain.retry"  # attrs: attempt, error.type, message
EVENT_CUSTOM = "langchain.custom_event"  # attrs: name, data
EVENT_TEXT = "langchain.text"  # attrs: text
EVENT_FIRST_CHUNK = "gen_ai.first_chunk"  # when the first streamed chunk arrived
EVENT_INTERRUPT = "langchain.interrupt"  # LangGraph interrupt/bubble-up (not an error)

# Content-bearing attribute names: dropped when content capture is off.
CONTENT_ATTRIBUTES = frozenset(
    {
        LC_INPUT,
        LC_OUTPUT,
        GEN_AI_INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES,
        GEN_AI_SYSTEM_INSTRUCTIONS,
        GEN_AI_TOOL_CALL_ARGUMENTS,
        GEN_AI_TOOL_CALL_RESULT,
        GEN_AI_RETRIEVAL_QUERY_TEXT,
        GEN_AI_RETRIEVAL_DOCUMENTS,
    }
)

INSTRUMENTATION_SCOPE = "spanchain"
