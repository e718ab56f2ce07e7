"""UI building blocks that know Streamlit; all model work goes through `wavenet`."""
