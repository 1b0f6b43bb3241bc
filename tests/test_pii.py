"""PII masking: e-mail addresses, phone numbers (international, US and UK formats) and IP
addresses are masked; clinical numbers, dates, DOIs, ISBNs and PMIDs are not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corpus.pii import KINDS, PiiConfig, mask_pii, mask_pii_batch


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Contact jane.doe@hospital.org for details.", "Contact <EMAIL> for details."),
        ("Email: cdcinfo@cdc.gov.", "Email: <EMAIL>."),
        ("<Walter.Zingg@hcuge.ch>", "<<EMAIL>>"),
        ("first+tag@mail.example.co.uk, x_y@sub-domain.io", "<EMAIL>, <EMAIL>"),
    ],
)
def test_emails_masked(text: str, masked: str) -> None:
    assert mask_pii(text)[0] == masked


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 123-4567",
        "+1-800-555-0199",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+41 21 693 11 11",
        "+33 1 23 45 67 89",
        "+49 30 12345678",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-800-232-4636",
        "020 7946 0958",
        "0161 496 0000",
        "07700 900123",
        "(01632) 960001",
    ],
)
def test_phone_formats_masked(phone: str) -> None:
    text = f"For questions call {phone} on weekdays."
    assert mask_pii(text) == (
        "For questions call <PHONE> on weekdays.",
        {"email": 0, "phone": 1, "ip_address": 0},
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Tel: 021 693 11 11", "Tel: <PHONE>"),
        ("Tel. 0041 22 791 21 11", "Tel. <PHONE>"),
        ("fax 22 791 4806 (office)", "fax <PHONE> (office)"),
        ("Phone no. 2345678", "Phone no. <PHONE>"),
    ],
)
def test_labelled_phones_masked(text: str, masked: str) -> None:
    assert mask_pii(text)[0] == masked


@pytest.mark.parametrize(
    "text",
    [
        "eGFR < 60 mL/min/1.73 m2",
        "body surface area 1.73 m2 and BMI 27.4 kg/m2",
        "admitted on 2020-11-27 at 14:30:45",
        "dates 27/11/2020, 11.27.2020 and 1998-2008",
        "doi:10.1007/s40273-016-0400-5",
        "https://doi.org/10.1056/NEJMoa2034577",
        "https://www.cdc.gov/mmwr/volumes/71/rr/rr7103a1.htm?s_cid=555-123-4567",
        "95% CI 0.88 to 1.36",
        "HR 0.82 (95% CI 0.71-0.95; p=0.008)",
        "ISBN 978-92-4-154992-9",
        "ISBN-13: 978 92 4 154992 9",
        "ISSN: 1057-5987 (Print)",
        "PMID: 17319115",
        "PMID:26333030 and PMCID: PMC5828200",
        "NCT01234567",
        "EudraCT 2018-001234-56",
        "120/80 mmHg",
        "JAMA 2010;303:2295-2297",
        "Pain Med 2016;17:85–98. PMID:26333030",
        "publication no. PEP21–02–01–002",
        "n = 1,234,567 and 12 345 678 cells",
        "CD4+ 350 cells/mm3 and CD8+ 1200 cells/mm3",
        "dose +0.5 mg then +1.5 mg",
        "pH 7.35-7.45 and PaCO2 4.7-6.0 kPa",
        "ICD-10 I21.4, SNOMED 22298006",
        "weights 70 80 90 100 kg",
        "section 4.6.1.2 and table 2.1.3.4",
        "version 2.10.3.1",
        "see 1.2.3.4 of the annex",
        "at 12:30:45 on std::vector",
        "MAC 00:1A:2B:3C:4D:5E",
        "call 911 or 112",
        "10,000 IU daily for 8 weeks",
        "Accession GSE123456, SRR1234567",
        "the binary exponent 000 0000 0000",
    ],
)
def test_clinical_numbers_not_masked(text: str) -> None:
    assert mask_pii(text) == (text, {"email": 0, "phone": 0, "ip_address": 0})


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("login from 192.168.1.10 failed", "login from <IP_ADDRESS> failed"),
        ("proxy 10.0.0.1:8080", "proxy <IP_ADDRESS>:8080"),
        ("host 255.255.255.0.", "host <IP_ADDRESS>."),
        ("v6 2001:db8::8a2e:370:7334 here", "v6 <IP_ADDRESS> here"),
        ("link fe80::1ff:fe23:4567:890a", "link <IP_ADDRESS>"),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329", "full <IP_ADDRESS>"),
    ],
)
def test_ip_addresses_masked(text: str, masked: str) -> None:
    assert mask_pii(text)[0] == masked


def test_counts_per_kind() -> None:
    text = (
        "Dr A. Smith, a.smith@uni.edu, tel +44 20 7946 0958, fax +44 20 7946 0959; "
        "b@x.org; server 172.16.254.1. Dose 500 mg q8h; eGFR 1.73 m2."
    )
    masked, counts = mask_pii(text)
    assert counts == {"email": 2, "phone": 2, "ip_address": 1}
    assert masked == (
        "Dr A. Smith, <EMAIL>, tel <PHONE>, fax <PHONE>; "
        "<EMAIL>; server <IP_ADDRESS>. Dose 500 mg q8h; eGFR 1.73 m2."
    )


def test_config_kinds_and_strictness() -> None:
    text = "a@b.org +41 21 693 11 11 192.168.0.1"
    masked, counts = mask_pii(text, PiiConfig(kinds=["email"]))
    assert masked == "<EMAIL> +41 21 693 11 11 192.168.0.1"
    assert counts == {"email": 1, "phone": 0, "ip_address": 0}
    assert PiiConfig().kinds == list(KINDS)
    with pytest.raises(ValidationError):
        PiiConfig(kinds=["ssn"])
    with pytest.raises(ValidationError):
        PiiConfig(mask="all")


def test_batch_matches_single_documents() -> None:
    texts = ["a@b.org", None, "Tel: 555-123-4567", "nothing here"]
    assert mask_pii_batch(texts) == [
        mask_pii("a@b.org"),
        (None, {"email": 0, "phone": 0, "ip_address": 0}),
        mask_pii("Tel: 555-123-4567"),
        ("nothing here", {"email": 0, "phone": 0, "ip_address": 0}),
    ]
