"""The whole demo generator: a seeded organisation (catalog, CODEOWNERS, git-shaped
changes, past incidents, bug reports, wiki pages), written as files and loaded
through the real ingestion code. It is also the fixture the project's tests share.

Imports ``knowledge`` modules only.
"""

from knowledge.demo.files import DemoFiles, write_demo_files
from knowledge.demo.organisation import DemoOrganisation, generate_organisation

__all__ = ["DemoFiles", "DemoOrganisation", "generate_organisation", "write_demo_files"]
