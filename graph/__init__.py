"""LangGraph graphs: the RCA pipeline and the question-answering agent."""
