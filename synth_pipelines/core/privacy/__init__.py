"""Privacy checks: identity embeddings of faces and matching them against a protected set of
real photos that no synthetic face may resemble."""
