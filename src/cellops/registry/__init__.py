"""The model registry and its governance.

Registered models with numbered versions tied to the runs that made them
(:mod:`.versions`), ``models:/`` URIs and safe loading; aliases, protected aliases and
promotion requests (:mod:`.governance`); the hash-chained audit log (:mod:`.audit`);
model cards written from lineage (:mod:`.card`); who is acting (:mod:`.identity`); a CI
workflow that runs, gates, registers and requests promotion (:mod:`.ci`).
"""

from ..identity import acting_as, current_user
from .audit import AuditEntry, AuditReport, audit_head, audit_log, verify_audit
from .card import ModelCard, register_card_section
from .ci import CiSettings, default_install, github_workflow
from .governance import (
    PromotionRequest,
    alias_protection,
    alias_protections,
    approve,
    delete_alias,
    delete_model_version,
    promotion_requests,
    protect_alias,
    reject,
    set_alias,
    unprotect_alias,
)
from .versions import (
    ModelVersion,
    RegisteredModel,
    get_model_version,
    list_models,
    load_model,
    model_card,
    parse_model_uri,
    register_model,
    search_model_versions,
    set_model_tags,
)

# Sections other areas write, named so their area is imported only when a card is written.
register_card_section("Explanations", "cellops.insight.card:explanation_section")
register_card_section("Fairness", "cellops.insight.card:fairness_section")

__all__ = ["AuditEntry", "AuditReport", "CiSettings", "ModelCard", "ModelVersion", "PromotionRequest",
           "RegisteredModel", "acting_as", "alias_protection", "alias_protections", "approve", "audit_head", "audit_log", "current_user",
           "default_install", "delete_alias", "delete_model_version", "get_model_version", "github_workflow", "list_models",
           "load_model", "model_card", "parse_model_uri", "promotion_requests", "protect_alias",
           "register_card_section", "register_model", "reject", "search_model_versions",
           "set_alias", "set_model_tags", "unprotect_alias", "verify_audit"]
