"""Checks on the servers culprit calls: Chroma (and whether the wiki is indexed) and the LLM."""

from __future__ import annotations

from bot.doctor import CheckResult, DoctorOptions, failed, passed, skipped
from knowledge.config import Settings, shown_url

WIKI_FIX = "run `culprit wiki sync`, then check its log for each source's failure"
NO_WIKI = "no wiki indexed: answers cite no runbooks; `culprit ingest wiki DIR` adds one"
CHROMA_FIX = "start Chroma (`chroma run --path DIR`) or fix CULPRIT_CHROMA_URL"


def check_wiki(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """The Chroma server (or the embedded store) answers and the wiki collection holds sections.

    A team that uses culprit for RCA only has no wiki: an empty store passes with a note, so a health
    script running doctor can go green. Only an unreachable Chroma, or CULPRIT_WIKI_SOURCES that left
    the wiki empty (or never made the embedded store: no sync ran, or every sync failed), fails.
    """
    if not settings.chroma_url and not settings.chroma_dir.is_dir():
        return [_no_store(settings)]
    from knowledge.errors import CulpritError, mask_url, masked_error
    from knowledge.wiki.store import COLLECTION_NAME, PackagedMiniLM, wiki_client

    where = shown_url(settings.chroma_url) if settings.chroma_url else str(settings.chroma_dir)
    try:
        client = wiki_client(settings)
        names = {getattr(item, "name", item) for item in client.list_collections()}
        count = (
            client.get_collection(COLLECTION_NAME, embedding_function=PackagedMiniLM()).count()  # type: ignore[arg-type]
            if COLLECTION_NAME in names else 0
        )
    except CulpritError as error:  # may quote chromadb's message, which may quote the server's answer
        return [failed("wiki", mask_url(str(error).split(";")[0], settings.chroma_url), CHROMA_FIX)]
    except Exception as error:  # chromadb raises plain ValueError/ConnectionError and its own errors
        return [failed("wiki", f"Chroma at {where} failed: {masked_error(error, 200, settings.chroma_url)}", CHROMA_FIX)]
    if not count:
        return [_empty_wiki(settings, where)]
    return [passed("wiki", f"{count} sections indexed at {where}")]


def _no_store(settings: Settings) -> CheckResult:
    """No store is "wiki search is off" only when no sources were configured: else no sync ever filled one."""
    if not settings.wiki_sources:
        return skipped("wiki", "no CULPRIT_CHROMA_URL and no embedded index yet (wiki search is off)")
    return failed("wiki", f"CULPRIT_WIKI_SOURCES names {_source_names(settings)} but no embedded index exists yet "
                  f"at {settings.chroma_dir}", WIKI_FIX)


def _source_names(settings: Settings) -> str:
    return ", ".join(source.name for source in settings.wiki_sources)


def _empty_wiki(settings: Settings, where: str) -> CheckResult:
    """A wiki nobody set up is a choice; one that CULPRIT_WIKI_SOURCES should have filled is broken."""
    if not settings.wiki_sources:
        return passed("wiki", f"Chroma at {where} answers; {NO_WIKI}")
    return failed("wiki", f"CULPRIT_WIKI_SOURCES names {_source_names(settings)} but the wiki at {where} holds no sections", WIKI_FIX)


def check_llm(settings: Settings, options: DoctorOptions) -> list[CheckResult]:
    """``/v1/models`` lists the configured name, the server gives a batch's logprobs, and tool calling answers."""
    if not settings.llm_configured:
        return [skipped("llm", "CULPRIT_LLM_BASE_URL and CULPRIT_LLM_MODEL are not both set (the local judge ranks)")]
    import openai

    from tools.llm.client import LLMEndpoint, openai_client
    from tools.rca.judges.llm import MAX_TOP_LOGPROBS

    endpoint = LLMEndpoint.from_settings(settings)
    client = openai_client(endpoint)
    server = shown_url(endpoint.base_url)  # a proxy's password in the URL stays out of the report and the log
    try:
        served = [model.id for model in client.models.list()]
    except openai.APIError as error:
        return [failed("llm", f"{server} does not answer /models ({_reason(error)})",
                       "start the vLLM server (docs/llm.md) or fix CULPRIT_LLM_BASE_URL and CULPRIT_LLM_API_KEY")]
    if endpoint.model not in served:
        return [failed("llm", f"{server} serves {', '.join(served) or 'nothing'}, not {endpoint.model}",
                       "set CULPRIT_LLM_MODEL to a served name, or start vLLM with --served-model-name " + endpoint.model)]
    top = min(settings.batch_size, MAX_TOP_LOGPROBS)
    probes = [
        ("logprobs", {"logprobs": True, "top_logprobs": top},
         f"restart vLLM with --max-logprobs {top} or more (the judge asks for one logprob per change of a batch)"),
        ("tool call", {"tools": [_PING_TOOL], "tool_choice": "auto"},
         "restart vLLM with --enable-auto-tool-choice --tool-call-parser <the model family's parser> (docs/llm.md)"),
    ]
    for what, extra, fix in probes:
        try:
            client.chat.completions.create(
                model=endpoint.model, messages=[{"role": "user", "content": "Say OK."}], max_tokens=8, **extra
            )
        except openai.APIError as error:
            return [failed("llm", f"a {what} request to {endpoint.model} failed ({_reason(error)})", fix)]
    return [passed("llm", f"{endpoint.model} at {server}: {top} logprobs and tool calls answered")]


_PING_TOOL = {
    "type": "function",
    "function": {"name": "ping", "description": "Answer a health check.", "parameters": {"type": "object", "properties": {}}},
}


def _reason(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    message = str(getattr(error, "message", "") or error).splitlines()[0][:200]
    return f"HTTP {status}: {message}" if status else message
