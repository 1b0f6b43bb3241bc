"""Bronze: records as extracted from their source files, one table per source."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructType,
)

from schemas.table_spec import TableSpec, col

SOURCES = ("pubmed", "pmc", "guidelines", "replay")


def lineage_columns(run_comment: str = "the ingest run that wrote this row") -> list:
    return [
        col("source_file", StringType(), "absolute path of the input file", nullable=False),
        col(
            "locator",
            StringType(),
            "where in source_file the record is: record index and byte offset, archive"
            " member, page range or line number",
            nullable=False,
        ),
        col("ingest_run_id", StringType(), run_comment, nullable=False),
    ]


def version_columns() -> list:
    return [
        col(
            "supersede_key",
            StringType(),
            "orders copies of a record (file name, version, record index): the greatest wins",
            nullable=False,
        ),
        col("record_sha256", StringType(), "hash of the record's content columns"),
    ]


PUBMED = TableSpec(
    path="bronze/pubmed",
    comment="PubMed citations, one row per PMID at its latest version (baseline then updates)",
    keys=("pmid",),
    schema=StructType(
        [
            col("doc_id", StringType(), 'document id, "pubmed:<pmid>"', nullable=False),
            col("pmid", LongType(), "PubMed identifier", nullable=False),
            col("version", IntegerType(), "PMID Version attribute (1 unless versioned)"),
            col("record_type", StringType(), "article (PubmedArticle/MedlineCitation) or book"),
            col("title", StringType(), "ArticleTitle, inline markup kept as text"),
            col("vernacular_title", StringType(), "title in the original language"),
            col(
                "abstract",
                StringType(),
                "AbstractText paragraphs; structured sections as 'LABEL: text'; null if none",
            ),
            col("abstract_copyright", StringType(), "Abstract/CopyrightInformation"),
            col("language", StringType(), "MEDLINE code of the first Language, e.g. eng"),
            col("languages", ArrayType(StringType()), "every Language of the article"),
            col("journal", StringType(), "full journal title (Journal/Title)"),
            col("journal_abbrev", StringType(), "ISOAbbreviation, else MedlineTA"),
            col("issn", StringType(), "journal ISSN"),
            col("pub_year", IntegerType(), "PubDate/Year, else first year in MedlineDate"),
            col("pub_types", ArrayType(StringType()), "PublicationType names"),
            col("mesh_terms", ArrayType(StringType()), "MeSH descriptor names"),
            col("keywords", ArrayType(StringType()), "author keywords"),
            col("doi", StringType(), "DOI from ArticleIdList, else ELocationID"),
            col("pmcid", StringType(), "PMC id (PMCxxxx) when the paper is in PMC"),
            col(
                "is_retracted",
                BooleanType(),
                "type 'Retracted Publication' or a RetractionIn comment",
                nullable=False,
            ),
            col(
                "is_retraction_notice",
                BooleanType(),
                "type 'Retraction of Publication' or a RetractionOf comment",
                nullable=False,
            ),
            col("record_status", StringType(), "MedlineCitation Status (MEDLINE, In-Process, …)"),
            col("publication_status", StringType(), "PubmedData/PublicationStatus"),
            col("date_completed", DateType(), "DateCompleted"),
            col("date_revised", DateType(), "DateRevised"),
            col("license", StringType(), "normalised licence of the text", nullable=False),
            *version_columns(),
            *lineage_columns(),
        ]
    ),
    constraints={
        "pmid_positive": "pmid > 0",
        "doc_id_matches_pmid": "doc_id = concat('pubmed:', CAST(pmid AS STRING))",
        "pub_year_plausible": "pub_year IS NULL OR pub_year BETWEEN 1500 AND 2200",
    },
)

PUBMED_DELETIONS = TableSpec(
    path="bronze/pubmed_deletions",
    comment="PMIDs withdrawn by DeleteCitation in update files (kept so a re-run of an"
    " older file cannot bring them back)",
    keys=("pmid",),
    schema=StructType(
        [
            col("pmid", LongType(), "deleted PubMed identifier", nullable=False),
            col(
                "supersede_key",
                StringType(),
                "order of the deletion among the PMID's versions",
                nullable=False,
            ),
            *lineage_columns(),
        ]
    ),
    constraints={"pmid_positive": "pmid > 0"},
)

QUARANTINE = TableSpec(
    path="bronze/quarantine",
    comment="Input that could not be read: file, place in the file and the error",
    keys=("source", "source_file", "locator", "error_class"),
    schema=StructType(
        [
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col("error_class", StringType(), "kind of error, e.g. MalformedXML", nullable=False),
            col("error_message", StringType(), "the error as the reader reported it"),
            *lineage_columns("the ingest run that last saw this error"),
        ]
    ),
    constraints={"source_known": "source IN ('pubmed', 'pmc', 'guidelines', 'replay')"},
)


PMC = TableSpec(
    path="bronze/pmc",
    comment="PubMed Central open-access full texts (JATS), one row per PMCID",
    keys=("doc_id",),
    schema=StructType(
        [
            col("doc_id", StringType(), 'document id, "pmc:<PMCID>"', nullable=False),
            col("pmcid", StringType(), "PMC identifier, PMC prefix included", nullable=False),
            col("pmid", LongType(), "PubMed identifier of the same paper, if given"),
            col("doi", StringType(), "DOI"),
            col("title", StringType(), "article title"),
            col(
                "abstract",
                StringType(),
                "abstract paragraphs; structured sections as 'Title: text'",
            ),
            col(
                "body",
                StringType(),
                "body as markdown-ish text: '#'/'##' section headings, MediTron's [bib_ref],"
                " [fig_ref], [fig], [table], [formula] markers (unless turned off); null"
                " when the article has no body",
            ),
            col(
                "license",
                StringType(),
                "normalised licence (cc0, cc-by, cc-by-nc, …, unknown)",
                nullable=False,
            ),
            col("license_text", StringType(), "licence statements as written"),
            col("journal", StringType(), "journal title"),
            col("pub_year", IntegerType(), "ppub year, else epub, else any publication year"),
            col("article_type", StringType(), "JATS article-type"),
            col("language", StringType(), "xml:lang of the article, lower-cased"),
            col("has_body", BooleanType(), "whether the article has body text", nullable=False),
            col("n_figures", IntegerType(), "figures in the article"),
            col("n_tables", IntegerType(), "tables in the article"),
            col("n_formulas", IntegerType(), "display and inline formulas"),
            col("n_citations", IntegerType(), "entries of the reference list"),
            col(
                "markers", BooleanType(), "whether body carries MediTron's markers", nullable=False
            ),
            *version_columns(),
            *lineage_columns(),
        ]
    ),
    constraints={
        "doc_id_matches_pmcid": "doc_id = concat('pmc:', pmcid)",
        "pmcid_prefixed": "pmcid LIKE 'PMC%'",
        "body_iff_has_body": "has_body = (body IS NOT NULL)",
    },
)

REPLAY = TableSpec(
    path="bronze/replay",
    comment="General-domain replay documents (RedPajama / Dolma JSONL)",
    keys=("doc_id",),
    schema=StructType(
        [
            col(
                "doc_id",
                StringType(),
                'document id, "replay:<subset>:<native id or text hash>"',
                nullable=False,
            ),
            col(
                "subset",
                StringType(),
                "arxiv, c4, common_crawl, wikipedia, book, stackexchange, github, pile or other",
                nullable=False,
            ),
            col("text", StringType(), "document text as given", nullable=False),
            col("meta", MapType(StringType(), StringType()), "flattened metadata, values as text"),
            col("url", StringType(), "source URL when the metadata has one"),
            col("language", StringType(), "language given by the metadata"),
            col("license", StringType(), "normalised licence of the text", nullable=False),
            *version_columns(),
            *lineage_columns(),
        ]
    ),
    constraints={
        "subset_known": "subset IN ('arxiv', 'c4', 'common_crawl', 'wikipedia', 'book',"
        " 'stackexchange', 'github', 'pile', 'other')",
    },
)

GUIDELINES = TableSpec(
    path="bronze/guidelines",
    comment="Clinical practice guidelines (PDF, HTML, MediTron's released JSONL), extracted text",
    keys=("doc_id",),
    schema=StructType(
        [
            col(
                "doc_id",
                StringType(),
                'document id, "guidelines:<source>:<content hash>" (or the released id)',
                nullable=False,
            ),
            col(
                "source",
                StringType(),
                "publisher key from the source registry (who, cdc, nice, …)",
                nullable=False,
            ),
            col(
                "title", StringType(), "document title (PDF metadata or first heading, page title)"
            ),
            col("url", StringType(), "where the document was published, when known"),
            col(
                "raw_text",
                StringType(),
                "extracted text: '#' headings, paragraphs, tables as markdown rows; layout"
                " artifacts (running headers, footers, page numbers, hyphenation) removed",
                nullable=False,
            ),
            col("format", StringType(), "pdf, html or jsonl", nullable=False),
            col("n_pages", IntegerType(), "pages of a PDF"),
            col("license", StringType(), "normalised licence of the document", nullable=False),
            *version_columns(),
            *lineage_columns(),
        ]
    ),
    constraints={"format_known": "format IN ('pdf', 'html', 'jsonl')"},
)
