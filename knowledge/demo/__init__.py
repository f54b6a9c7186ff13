"""A generated organisation to try culprit on, and the fixture the project's tests share."""

from knowledge.demo.files import DemoFiles, write_demo_files
from knowledge.demo.organisation import DemoOrganisation, generate_organisation

__all__ = ["DemoFiles", "DemoOrganisation", "generate_organisation", "write_demo_files"]
