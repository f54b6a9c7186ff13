"""Domain capabilities as typed functions, each also exposed as a LangChain tool."""
