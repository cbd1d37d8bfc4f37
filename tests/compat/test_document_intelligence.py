"""Azure Document Intelligence ``prebuilt-read`` through Microsoft's own SDK
(``azure-ai-documentintelligence`` 1.0.2, unmodified) against a live server."""

from __future__ import annotations

import httpx
import pytest
from azure.ai.documentintelligence import DocumentIntelligenceClient
from azure.ai.documentintelligence.models import AnalyzeDocumentRequest, AnalyzeResult
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from ocrvault.api.compat.document_intelligence import OUTPUTS
from ocrvault.audit import AuditAction
from tests.compat.conftest import PDF, PNG, Live


def sdk(live: Live, key: str) -> DocumentIntelligenceClient:
    return DocumentIntelligenceClient(live.url, AzureKeyCredential(key))


def analyze(client: DocumentIntelligenceClient, body: object,
            **options: object) -> tuple[str, AnalyzeResult]:
    poller = client.begin_analyze_document("prebuilt-read", body, polling_interval=0.05,
                                           **options)
    result = poller.result()
    return poller.details["operation_id"], result


def assert_spans_consistent(result: AnalyzeResult) -> None:
    content = result.content
    for page in result.pages:
        for word in page.words:
            assert content[word.span.offset:word.span.offset + word.span.length] == word.content
        for line in page.lines:
            (span,) = line.spans
            assert content[span.offset:span.offset + span.length] == line.content


def test_the_sdk_reads_the_same_text_as_v1_with_spans_into_content(live: Live) -> None:
    result_id, result = analyze(sdk(live, live.key), PNG, locale="en-US")
    assert result.model_id == "prebuilt-read" and result.api_version == "2024-11-30"
    assert result.content == live.v1_text(PNG)
    assert_spans_consistent(result)
    assert result.pages[0].page_number == 1 and len(result.pages[0].lines[0].polygon) == 8
    assert live.audited(AuditAction.JOB_SUBMITTED, result_id) == 1
    assert live.audited(AuditAction.JOB_RESULT_READ, result_id) >= 1


def test_pages_of_a_pdf_each_span_their_own_lines_of_content(live: Live) -> None:
    _, result = analyze(sdk(live, live.key), PDF, pages="2-3")
    assert [page.page_number for page in result.pages] == [2, 3]
    assert_spans_consistent(result)
    for page in result.pages:
        (span,) = page.spans
        assert result.content[span.offset:span.offset + span.length] == "\n".join(
            line.content for line in page.lines)
    # /v1 separates pages with a form feed, Document Intelligence with a newline.
    assert result.content == live.v1_text(PDF, pages="2-3").replace("\f", "\n")


def test_a_base64_source_reads_as_the_raw_body_does(live: Live) -> None:
    request = AnalyzeDocumentRequest(bytes_source=PNG)
    _, result = analyze(sdk(live, live.key), request)
    assert result.content == live.v1_text(PNG)


def test_delete_is_the_v1_deletion_and_the_result_is_gone_after(live: Live) -> None:
    client = sdk(live, live.key)
    result_id, _ = analyze(client, PNG)
    client.delete_analyze_result("prebuilt-read", result_id)
    assert live.audited(AuditAction.JOB_DELETED, result_id) == 1
    answer = httpx.get(
        f"{live.url}/documentintelligence/documentModels/prebuilt-read/analyzeResults/"
        f"{result_id}", params={"api-version": "2024-11-30"},
        headers={"Ocp-Apim-Subscription-Key": live.key})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NotFound"
    job = httpx.get(f"{live.url}/v1/jobs/{result_id}",
                    headers={"Authorization": f"Bearer {live.key}"})
    assert job.status_code == 410


def test_a_wrong_key_raises_client_authentication_error(live: Live) -> None:
    with pytest.raises(ClientAuthenticationError):
        analyze(sdk(live, "ocv_live_wrong"), PNG)


def test_another_tenants_key_never_sees_or_deletes_the_result(live: Live) -> None:
    result_id, _ = analyze(sdk(live, live.key), PNG)
    stranger = sdk(live, live.other_key)
    with pytest.raises(ResourceNotFoundError):
        stranger.delete_analyze_result("prebuilt-read", result_id)
    answer = httpx.get(
        f"{live.url}/documentintelligence/documentModels/prebuilt-read/analyzeResults/"
        f"{result_id}", params={"api-version": "2024-11-30"},
        headers={"Ocp-Apim-Subscription-Key": live.other_key})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NotFound"


def test_other_models_answer_model_not_found_in_dis_error_shape(live: Live) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        sdk(live, live.key).begin_analyze_document("prebuilt-invoice", PNG)
    assert missing.value.error is not None and missing.value.error.code == "ModelNotFound"


@pytest.mark.parametrize("options", [{"output": ["figures"]},
                                     {"output_content_format": "markdown"}])
def test_formats_not_available_yet_are_refused_clearly(live: Live,
                                                        options: dict[str, object]) -> None:
    with pytest.raises(HttpResponseError) as refused:
        sdk(live, live.key).begin_analyze_document("prebuilt-read", PNG, **options)
    assert refused.value.status_code == 400 and "not available" in str(refused.value.message)


def test_utf16_offsets_count_code_units() -> None:
    from ocrvault.api.compat.document_intelligence import analyze_result
    from ocrvault.model import Document, EngineInfo, Line, Page, Word

    box = [0.0, 0, 1, 0, 1, 1, 0, 1]
    words = [Word(text="\U0001d400x", polygon=box, confidence=1.0),
             Word(text="ok", polygon=box, confidence=1.0)]
    page = Page(number=1, width=9, height=9, angle=0.0, lines=[
        Line(text="\U0001d400x ok", polygon=box, confidence=1.0, words=words)])
    document = Document.from_pages([page], EngineInfo(name="t", version="1"), ["eng"])
    spans = [w["span"] for w in analyze_result(document, "utf16CodeUnit")["pages"][0]["words"]]
    assert spans == [{"offset": 0, "length": 3}, {"offset": 4, "length": 2}]


@pytest.mark.skipif(OUTPUTS["pdf"] is None,
                    reason="no searchable PDF renderer on this branch: map OUTPUTS['pdf']")
def test_output_pdf_is_a_searchable_pdf_fetched_with_the_sdk(live: Live) -> None:
    client = sdk(live, live.key)
    result_id, _ = analyze(client, PNG, output=["pdf"])
    pdf = b"".join(client.get_analyze_result_pdf("prebuilt-read", result_id))
    assert pdf.startswith(b"%PDF")
    assert live.audited(AuditAction.JOB_OUTPUT_READ, result_id) >= 1
